package agent

import (
	"net"
	"testing"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/arcavm/arca/guest/wire"
)

func query(t *testing.T, name string, typ dnsmessage.Type) []byte {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 7, RecursionDesired: true})
	b.StartQuestions()
	b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET})
	out, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDNSAnswers(t *testing.T) {
	table := newDNSTable(wire.DNSConfig{Records: []wire.DNSRecord{
		{Name: "db", IPs: []string{"172.18.0.3", "10.1.0.3"}},
		{Name: "Web.", IPs: []string{"172.18.0.4"}},
	}})
	for _, c := range []struct {
		name  string
		typ   dnsmessage.Type
		rcode dnsmessage.RCode
		want  []string
	}{
		{"db.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, []string{"172.18.0.3", "10.1.0.3"}},
		{"DB.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, []string{"172.18.0.3", "10.1.0.3"}},
		{"web.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, []string{"172.18.0.4"}},
		{"db.", dnsmessage.TypeAAAA, dnsmessage.RCodeSuccess, nil},
		{"4.0.18.172.in-addr.arpa.", dnsmessage.TypePTR, dnsmessage.RCodeSuccess, []string{"web."}},
		{"nope.", dnsmessage.TypeA, dnsmessage.RCodeNameError, nil},
	} {
		out, _, err := table.answer(query(t, c.name, c.typ))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var msg dnsmessage.Message
		if err := msg.Unpack(out); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if msg.Header.ID != 7 || !msg.Header.Response || msg.Header.RCode != c.rcode {
			t.Errorf("%s %v: header %+v", c.name, c.typ, msg.Header)
		}
		var got []string
		for _, a := range msg.Answers {
			switch r := a.Body.(type) {
			case *dnsmessage.AResource:
				got = append(got, net.IP(r.A[:]).String())
			case *dnsmessage.PTRResource:
				got = append(got, r.PTR.String())
			}
		}
		if len(got) != len(c.want) {
			t.Errorf("%s %v: answers %v, want %v", c.name, c.typ, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s %v: answers %v, want %v", c.name, c.typ, got, c.want)
			}
		}
	}
	// Forwarding asked for but not possible: SERVFAIL, not a denial.
	fwd := newDNSTable(wire.DNSConfig{Forward: true})
	out, _, _ := fwd.answer(query(t, "example.org.", dnsmessage.TypeA))
	var msg dnsmessage.Message
	msg.Unpack(out)
	if msg.Header.RCode != dnsmessage.RCodeServerFailure {
		t.Errorf("forwarded name: %v", msg.Header.RCode)
	}
}

func TestDNSServerUDPAndTCP(t *testing.T) {
	s, err := startDNSAt("127.0.0.1:0", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	s.setTable(newDNSTable(wire.DNSConfig{Records: []wire.DNSRecord{{Name: "db", IPs: []string{"10.0.0.9"}}}}))
	askBoth(t, s.udp.LocalAddr().String(), "db.", "10.0.0.9")
}

// TestDNSForward: names the table does not know go to the servers in
// order, over the client's protocol; a dead server is skipped; with none
// answering the client gets SERVFAIL.
func TestDNSForward(t *testing.T) {
	up, err := startDNSAt("127.0.0.1:0", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer up.close()
	up.setTable(newDNSTable(wire.DNSConfig{Records: []wire.DNSRecord{{Name: "example.test", IPs: []string{"192.0.2.7"}}}}))
	var d net.Dialer
	s, err := startDNSAt("127.0.0.1:0", nil, d.DialContext)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	dead := "127.0.0.1:1"
	s.setTable(newDNSTable(wire.DNSConfig{
		Records: []wire.DNSRecord{{Name: "db", IPs: []string{"10.0.0.9"}}},
		Forward: true, Servers: []string{dead, up.udp.LocalAddr().String()},
	}))
	addr := s.udp.LocalAddr().String()
	askBoth(t, addr, "example.test.", "192.0.2.7")
	askBoth(t, addr, "db.", "10.0.0.9")

	s.setTable(newDNSTable(wire.DNSConfig{Forward: true, Servers: []string{dead}}))
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(query(t, "example.test.", dnsmessage.TypeA))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	var msg dnsmessage.Message
	if err := msg.Unpack(buf[:n]); err != nil || msg.Header.RCode != dnsmessage.RCodeServerFailure {
		t.Fatalf("no server answering: %v %+v", err, msg.Header)
	}
}

// askBoth asks addr for name over UDP and TCP and wants one A record, ip.
func askBoth(t *testing.T, addr, name, ip string) {
	t.Helper()
	for _, network := range []string{"udp", "tcp"} {
		c, err := net.Dial(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		q := query(t, name, dnsmessage.TypeA)
		if network == "tcp" {
			q = append([]byte{0, byte(len(q))}, q...)
		}
		c.Write(q)
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		c.Close()
		if err != nil {
			t.Fatalf("%s: %v", network, err)
		}
		if network == "tcp" {
			buf, n = buf[2:], n-2
		}
		var msg dnsmessage.Message
		if err := msg.Unpack(buf[:n]); err != nil || len(msg.Answers) != 1 {
			t.Fatalf("%s %s: %v %+v", network, name, err, msg)
		}
		if a, ok := msg.Answers[0].Body.(*dnsmessage.AResource); !ok || net.IP(a.A[:]).String() != ip {
			t.Fatalf("%s %s: answer %v, want %s", network, name, msg.Answers[0].Body, ip)
		}
	}
}
