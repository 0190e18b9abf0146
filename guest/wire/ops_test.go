package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// The fake agent's container ops: paths name their behaviour.

func (f *fakeAgent) Top(ctx context.Context, psArgs string) (TopResult, error) {
	if psArgs == "bad" {
		return TopResult{}, Errorf(KindInvalid, "unsupported ps option %q", psArgs)
	}
	return TopResult{Titles: []string{"PID", "CMD"}, Processes: [][]string{{"1", psArgs}}}, nil
}

func (f *fakeAgent) Usage(ctx context.Context) (DiskUsage, error) {
	return DiskUsage{WritableBytes: 4096}, nil
}

func (f *fakeAgent) Stats(ctx context.Context) (Stats, error) {
	return Stats{CPUTotal: 42, Networks: map[string]NetworkStats{"eth0": {RxBytes: 7}}}, nil
}

func (f *fakeAgent) Pause(ctx context.Context) error { return nil }
func (f *fakeAgent) Resume(ctx context.Context) error {
	return Errorf(KindConflict, "container is not paused")
}

func (f *fakeAgent) ConfigureNetwork(ctx context.Context, cfg NetworkConfig) error {
	if len(cfg.Interfaces) > 0 && cfg.Underlay == nil {
		return Errorf(KindInvalid, "interfaces without an underlay")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.network = append(f.network, cfg)
	return nil
}

func (f *fakeAgent) ArchiveStat(ctx context.Context, path string) (PathStat, error) {
	if path == "/missing" {
		return PathStat{}, Errorf(KindNotFound, "no such file: %s", path)
	}
	return PathStat{Name: path[1:], Size: 3, Mode: 0o640}, nil
}

// ArchiveGet: "/big" sends 1 MB, "/broken" fails after 100 KB.
func (f *fakeAgent) ArchiveGet(ctx context.Context, path string) (PathStat, func(io.Writer) error, error) {
	stat, err := f.ArchiveStat(ctx, path)
	if err != nil {
		return stat, nil, err
	}
	return stat, func(w io.Writer) error {
		data := bytes.Repeat([]byte("x"), 1<<20)
		if path == "/broken" {
			w.Write(data[:100<<10])
			return errors.New("disk on fire")
		}
		_, err := w.Write(data)
		return err
	}, nil
}

// ArchivePut: "/missing" fails at once, "/fail" after reading 10 bytes;
// else it counts what it got into f.written.
func (f *fakeAgent) ArchivePut(ctx context.Context, dir string, opts ArchivePutOptions) (func(io.Reader) error, error) {
	if dir == "/missing" {
		return nil, Errorf(KindNotFound, "no such directory: %s", dir)
	}
	return func(r io.Reader) error {
		if dir == "/fail" {
			io.CopyN(io.Discard, r, 10)
			return Errorf(KindInvalid, "bad archive")
		}
		n, err := io.Copy(io.Discard, r)
		f.written.Store(n)
		return err
	}, nil
}

func TestContainerOps(t *testing.T) {
	f := newFakeAgent()
	c, _ := pair(t, f)

	top, err := c.Top(ctx(t), "aux")
	if err != nil || top.Processes[0][1] != "aux" {
		t.Fatalf("top: %+v %v", top, err)
	}
	if _, err := c.Top(ctx(t), "bad"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("top bad: %v", err)
	}
	st, err := c.Stats(ctx(t))
	if err != nil || st.CPUTotal != 42 || st.Networks["eth0"].RxBytes != 7 {
		t.Fatalf("stats: %+v %v", st, err)
	}
	if u, err := c.Usage(ctx(t)); err != nil || u.WritableBytes != 4096 {
		t.Fatalf("usage: %+v %v", u, err)
	}
	if err := c.Pause(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := c.Resume(ctx(t)); !errors.Is(err, ErrConflict) {
		t.Fatalf("resume: %v", err)
	}
	netcfg := NetworkConfig{
		Underlay:   &UnderlayConfig{MAC: "02:00:00:00:00:01", Name: "arca0", Address: "198.18.0.2/16"},
		Interfaces: []Interface{{Name: "eth0", Address: "172.18.0.2/16", Peers: []Peer{{PublicKey: "k", Endpoint: "198.18.0.3:51820", AllowedIPs: []string{"172.18.0.3/32"}}}}},
		DNS:        DNSConfig{Records: []DNSRecord{{Name: "db", IPs: []string{"172.18.0.3"}}}, Forward: true},
	}
	if err := c.ConfigureNetwork(ctx(t), netcfg); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	got := f.network
	f.mu.Unlock()
	if len(got) != 1 || got[0].Interfaces[0].Peers[0].AllowedIPs[0] != "172.18.0.3/32" || got[0].DNS.Records[0].Name != "db" {
		t.Fatalf("network config arrived as %+v", got)
	}
	if err := c.ConfigureNetwork(ctx(t), NetworkConfig{Interfaces: netcfg.Interfaces}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("network without underlay: %v", err)
	}
	ps, err := c.ArchiveStat(ctx(t), "/etc")
	if err != nil || ps.Name != "etc" || ps.Mode != 0o640 {
		t.Fatalf("stat: %+v %v", ps, err)
	}
	if _, err := c.ArchiveStat(ctx(t), "/missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("stat missing: %v", err)
	}

	tests := []struct {
		path    string
		n       int64
		wantErr error
		msg     string
	}{
		{"/big", 1 << 20, nil, ""},
		{"/broken", 100 << 10, nil, "disk on fire"},
	}
	for _, tt := range tests {
		r, stat, err := c.ArchiveGet(ctx(t), tt.path)
		if err != nil || stat.Size != 3 {
			t.Fatalf("get %s: %+v %v", tt.path, stat, err)
		}
		n, err := io.Copy(io.Discard, r)
		r.Close()
		if n != tt.n || (tt.msg == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.msg)) {
			t.Errorf("get %s: %d bytes, %v", tt.path, n, err)
		}
	}
	if _, _, err := c.ArchiveGet(ctx(t), "/missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	// Abandoned halfway: the session stays usable.
	r, _, err := c.ArchiveGet(ctx(t), "/big")
	if err != nil {
		t.Fatal(err)
	}
	r.Read(make([]byte, 10))
	r.Close()

	data := bytes.Repeat([]byte("y"), 3<<20)
	if err := c.ArchivePut(ctx(t), "/dst", bytes.NewReader(data), ArchivePutOptions{}); err != nil {
		t.Fatal(err)
	}
	if f.written.Load() != int64(len(data)) {
		t.Fatalf("agent got %d bytes", f.written.Load())
	}
	if err := c.ArchivePut(ctx(t), "/missing", bytes.NewReader(data), ArchivePutOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("put missing: %v", err)
	}
	start := time.Now()
	if err := c.ArchivePut(ctx(t), "/fail", bytes.NewReader(bytes.Repeat(data, 10)), ArchivePutOptions{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("put failing: %v", err)
	}
	t.Logf("failed put took %v", time.Since(start))
	if err := c.Ping(ctx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestCapBuffer(t *testing.T) {
	tests := []struct {
		writes []string
		want   string
	}{
		{[]string{"ab", "cd"}, "abcd"},
		{[]string{"abc", "defgh"}, "abcde"},
		{[]string{"abcdefg"}, "abcde"},
	}
	for _, tt := range tests {
		b := &capBuffer{max: 5}
		for _, w := range tt.writes {
			if n, _ := b.Write([]byte(w)); n != len(w) {
				t.Fatalf("short write")
			}
		}
		if b.String() != tt.want {
			t.Errorf("%q: got %q", tt.writes, b.String())
		}
	}
}

// Changes sends more than one frame could hold; with changesFail set it
// fails after a few.
func (f *fakeAgent) Changes(ctx context.Context, emit func(Change) error) error {
	n := 50000
	if f.changesFail.Load() {
		n = 10
	}
	for i := range n {
		if err := emit(Change{Path: fmt.Sprintf("/data/file-%06d", i), Kind: ChangeKind(i % 3)}); err != nil {
			return err
		}
	}
	if f.changesFail.Load() {
		return errors.New("disk on fire")
	}
	return nil
}

func TestChanges(t *testing.T) {
	f := newFakeAgent()
	c, _ := pair(t, f)
	got, err := c.Changes(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 50000 || got[49999] != (Change{Path: "/data/file-049999", Kind: ChangeAdded}) {
		t.Fatalf("changes: %d, last %+v", len(got), got[len(got)-1])
	}
	f.changesFail.Store(true)
	if got, err := c.Changes(ctx(t)); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("failing changes: %d entries, err %v; want the agent's error", len(got), err)
	}
	// The session still serves after a failed list.
	if _, err := c.Usage(ctx(t)); err != nil {
		t.Fatal(err)
	}
}

// Export sends a tar of what was asked; "fail" breaks halfway.
func (f *fakeAgent) Export(ctx context.Context, what ExportKind) (func(io.Writer) error, error) {
	if what != ExportRootfs && what != ExportLayer {
		return nil, Errorf(KindInvalid, "unknown export %q", what)
	}
	return func(w io.Writer) error {
		for i := range 20000 {
			if _, err := fmt.Fprintf(w, "%s-%06d\n", what, i); err != nil {
				return err
			}
		}
		if f.changesFail.Load() {
			return errors.New("disk on fire")
		}
		return nil
	}, nil
}

func TestExport(t *testing.T) {
	f := newFakeAgent()
	c, _ := pair(t, f)
	for _, tt := range []struct {
		what    ExportKind
		fail    bool
		wantErr string
	}{
		{what: ExportRootfs},
		{what: ExportLayer},
		{what: ExportLayer, fail: true, wantErr: "disk on fire"},
		{what: "bogus", wantErr: "unknown export"},
	} {
		f.changesFail.Store(tt.fail)
		rc, err := c.Export(ctx(t), tt.what)
		var got []byte
		if err == nil {
			got, err = io.ReadAll(rc)
			rc.Close()
		}
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err %v, want %q", tt.what, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.what, err)
		}
		if !strings.HasSuffix(string(got), fmt.Sprintf("%s-019999\n", tt.what)) {
			t.Errorf("%s: got %d bytes ending %q", tt.what, len(got), got[max(0, len(got)-30):])
		}
	}
	if err := c.Ping(ctx(t)); err != nil {
		t.Fatal(err)
	}
}
