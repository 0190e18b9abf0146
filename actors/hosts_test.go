package actors

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/arcavm/arca/messages"
)

func TestParseExtraHosts(t *testing.T) {
	for _, c := range []struct {
		in   string
		want extraHost
		err  string
	}{
		{"db:10.0.0.2", extraHost{"db", netip.MustParseAddr("10.0.0.2")}, ""},
		{"db=10.0.0.2", extraHost{"db", netip.MustParseAddr("10.0.0.2")}, ""},
		{"v6:::1", extraHost{"v6", netip.MustParseAddr("::1")}, ""},
		{"v6:[fe80::1]", extraHost{"v6", netip.MustParseAddr("fe80::1")}, ""},
		{"me:host-gateway", extraHost{name: "me"}, ""},
		{"db:nope", extraHost{}, `invalid IP address in add-host: "nope"`},
		{"justaname", extraHost{}, `bad format for add-host: "justaname"`},
		{":10.0.0.2", extraHost{}, "bad format"},
	} {
		got, err := parseExtraHosts([]string{c.in})
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || messages.KindOf(err) != messages.KindInvalidParameter {
				t.Errorf("%q: err %v, want %q (invalid parameter)", c.in, err, c.err)
			}
			continue
		}
		if err != nil || len(got) != 1 || got[0] != c.want {
			t.Errorf("%q: got %+v, %v", c.in, got, err)
		}
	}
}

func TestHostsFile(t *testing.T) {
	gw := netip.MustParseAddr("172.18.0.1")
	got := string(hostsFileFor("web", netip.MustParseAddr("172.18.0.5"), []string{"db:10.0.0.2", "me:host-gateway"}, gw))
	if !strings.HasPrefix(got, "127.0.0.1\tlocalhost\n") ||
		!strings.HasSuffix(got, "10.0.0.2\tdb\n172.18.0.1\tme\n172.18.0.5\tweb\n") {
		t.Errorf("with network:\n%s", got)
	}
	// No network: the own name on 127.0.1.1, no host-gateway to give.
	got = string(hostsFileFor("web", netip.Addr{}, []string{"me:host-gateway"}, netip.Addr{}))
	if strings.Contains(got, "\tme\n") || !strings.HasSuffix(got, "127.0.1.1\tweb\n") {
		t.Errorf("without network:\n%s", got)
	}
}
