package actors

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"

	"github.com/arcavm/arca/guest/wire"
)

// countingAgent counts the network configurations it is given and fails
// the ones it is told to.
type countingAgent struct {
	fakeAgent
	mu   sync.Mutex
	got  []wire.NetworkConfig
	fail bool
}

func (c *countingAgent) ConfigureNetwork(_ context.Context, cfg wire.NetworkConfig) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, cfg)
	if c.fail {
		return errors.New("refused")
	}
	return nil
}

func (c *countingAgent) calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

// TestNetPusherSkipsWhatTheGuestHas: a configuration equal to the one the
// guest already has (the start's, or the last one applied) is not sent
// again; a changed one is, and after a failed push the same one is
// tried again.
func TestNetPusherSkipsWhatTheGuestHas(t *testing.T) {
	host, guest := net.Pipe()
	ag := &countingAgent{fakeAgent: fakeAgent{procs: map[string]*fakeProc{}}}
	go wire.Serve(context.Background(), guest, ag)
	c, err := wire.NewClient(host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := func(peers ...string) wire.NetworkConfig {
		ifc := wire.Interface{Name: "eth0", Address: "172.17.0.2/16", Peers: []wire.Peer{}}
		for _, p := range peers {
			ifc.Peers = append(ifc.Peers, wire.Peer{PublicKey: p, AllowedIPs: []string{"172.17.0.9/32"}})
		}
		return wire.NetworkConfig{Interfaces: []wire.Interface{ifc}, DNS: wire.DNSConfig{Forward: true}}
	}
	booted := cfg()
	p := &netPusher{client: c, last: &booted, log: func(error) {}}
	defer p.close()
	for _, step := range []struct {
		name  string
		cfg   wire.NetworkConfig
		fail  bool
		calls int
	}{
		{"what the start gave", cfg(), false, 0},
		{"a member joined", cfg("k1"), false, 1},
		{"the same membership again", cfg("k1"), false, 1},
		{"another member, refused", cfg("k1", "k2"), true, 2},
		{"the same after the failure", cfg("k1", "k2"), false, 3},
		{"and once more", cfg("k1", "k2"), false, 3},
	} {
		ag.mu.Lock()
		ag.fail = step.fail
		ag.mu.Unlock()
		<-p.push(step.cfg)
		if n := ag.calls(); n != step.calls {
			t.Fatalf("%s: %d configurations sent in all, want %d", step.name, n, step.calls)
		}
	}
}
