package agent

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/arcavm/arca/guest/wire"
)

const testPasswd = `root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
broken line
app:x:1000:1000:App:/home/app:/bin/sh
nohome:x:1001:1001::
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
`

const testGroup = `root:x:0:
wheel:x:10:root,app
audio:x:29:app
staff:x:50: app , daemon
app:x:1000:
nogroup:x:65534:
`

func TestResolveUser(t *testing.T) {
	tests := []struct {
		spec     string
		noFiles  bool
		want     execUser
		wantKind wire.Kind
		wantMsg  string
	}{
		{spec: "", want: execUser{UID: 0, GID: 0, Groups: []uint32{0, 10}, Home: "/root"}},
		{spec: "", noFiles: true, want: execUser{Groups: []uint32{0}, Home: "/"}},
		{spec: "root", want: execUser{Groups: []uint32{0, 10}, Home: "/root"}},
		{spec: "app", want: execUser{UID: 1000, GID: 1000, Groups: []uint32{1000, 10, 29, 50}, Home: "/home/app"}},
		{spec: "1000", want: execUser{UID: 1000, GID: 1000, Groups: []uint32{1000, 10, 29, 50}, Home: "/home/app"}},
		{spec: "app:audio", want: execUser{UID: 1000, GID: 29, Groups: []uint32{29}, Home: "/home/app"}},
		{spec: "app:4242", want: execUser{UID: 1000, GID: 4242, Groups: []uint32{4242}, Home: "/home/app"}},
		{spec: "1000:50", want: execUser{UID: 1000, GID: 50, Groups: []uint32{50}, Home: "/home/app"}},
		{spec: "4242", want: execUser{UID: 4242, Groups: []uint32{0}, Home: "/"}},
		{spec: "4242:4343", want: execUser{UID: 4242, GID: 4343, Groups: []uint32{4343}, Home: "/"}},
		{spec: "4242", noFiles: true, want: execUser{UID: 4242, Groups: []uint32{0}, Home: "/"}},
		{spec: "nobody:nogroup", want: execUser{UID: 65534, GID: 65534, Groups: []uint32{65534}, Home: "/nonexistent"}},
		{spec: "nohome", want: execUser{UID: 1001, GID: 1001, Groups: []uint32{1001}, Home: "/"}},
		{spec: "daemon", want: execUser{UID: 1, GID: 1, Groups: []uint32{1, 50}, Home: "/usr/sbin"}},
		{spec: "ghost", wantKind: wire.KindInvalid, wantMsg: "unable to find user ghost: no matching entries in passwd file"},
		{spec: "ghost", noFiles: true, wantKind: wire.KindInvalid, wantMsg: "unable to find user ghost"},
		{spec: "app:ghosts", wantKind: wire.KindInvalid, wantMsg: "unable to find group ghosts: no matching entries in group file"},
		{spec: "-1", wantKind: wire.KindInvalid, wantMsg: "unable to find user -1"},
	}
	for _, tt := range tests {
		name := tt.spec
		if tt.noFiles {
			name += " without files"
		}
		t.Run(name, func(t *testing.T) {
			var passwd, group io.Reader
			if !tt.noFiles {
				passwd, group = strings.NewReader(testPasswd), strings.NewReader(testGroup)
			}
			got, err := resolveUser(tt.spec, passwd, group)
			if tt.wantMsg != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantMsg) || wire.KindOf(err) != tt.wantKind {
					t.Fatalf("got %v (kind %q), want %q", err, wire.KindOf(err), tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestResolveUserReadError(t *testing.T) {
	if _, err := resolveUser("app", errReader{}, nil); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("got %v", err)
	}
}

func TestProcessEnv(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		home string
		tty  bool
		want []string
	}{
		{"adds home", []string{"PATH=/bin"}, "/root", false, []string{"PATH=/bin", "HOME=/root"}},
		{"keeps home", []string{"HOME=/x"}, "/root", false, []string{"HOME=/x"}},
		{"empty home is set", []string{"HOME="}, "/root", false, []string{"HOME="}},
		{"tty adds term", nil, "/", true, []string{"HOME=/", "TERM=xterm"}},
		{"tty keeps term", []string{"TERM=vt100"}, "/", true, []string{"TERM=vt100", "HOME=/"}},
		{"no tty no term", nil, "/", false, []string{"HOME=/"}},
		{"malformed kept", []string{"JUNK", "A=b=c"}, "/", false, []string{"JUNK", "A=b=c", "HOME=/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := processEnv(tt.env, tt.home, tt.tty)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseCaps(t *testing.T) {
	tests := []struct {
		in      []string
		want    capSet
		wantErr bool
	}{
		{in: nil, want: 0xa80425fb}, // Docker's default, as CapBnd shows it
		{in: []string{}, want: 0},
		{in: []string{"CAP_KILL", "net_admin"}, want: 1<<5 | 1<<12},
		{in: []string{"ALL"}, want: ^capSet(0)},
		{in: []string{"CAP_FLY"}, wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseCaps(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseCaps(%q) = %#x, %v; want %#x", tt.in, got, err, tt.want)
		}
	}
}
