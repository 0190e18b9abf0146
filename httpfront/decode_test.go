package httpfront

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/valyala/fasthttp"
)

func TestCompareVersions(t *testing.T) {
	cases := []struct {
		a, b string
		sign int
	}{
		{"1.51", "1.51", 0}, {"1.9", "1.10", -1}, {"1.100", "1.51", 1}, {"2.0", "1.99", 1},
	}
	for _, c := range cases {
		got := compareVersions(c.a, c.b)
		if (got > 0) != (c.sign > 0) || (got < 0) != (c.sign < 0) {
			t.Errorf("compare(%s, %s) = %d", c.a, c.b, got)
		}
	}
}

func TestNormalizeRef(t *testing.T) {
	cases := []struct{ name, tag, want string }{
		{"busybox", "", "docker.io/library/busybox:latest"},
		{"busybox", "1.36", "docker.io/library/busybox:1.36"},
		{"127.0.0.1:5000/busybox", "latest", "127.0.0.1:5000/busybox:latest"},
		{"busybox", "sha256:" + string(bytes.Repeat([]byte("a"), 64)), "docker.io/library/busybox@sha256:" + string(bytes.Repeat([]byte("a"), 64))},
	}
	for _, c := range cases {
		got, err := normalizeRef(c.name, c.tag)
		if err != nil || got != c.want {
			t.Errorf("normalizeRef(%q, %q) = %q, %v", c.name, c.tag, got, err)
		}
	}
	for _, bad := range []string{"", "UPPER", "a b"} {
		if _, err := normalizeRef(bad, ""); statusOf(err) != 400 {
			t.Errorf("normalizeRef(%q): %v", bad, err)
		}
	}
}

func TestFiltersParam(t *testing.T) {
	cases := []struct {
		raw  string
		want map[string][]string
		bad  bool
	}{
		{``, map[string][]string{}, false},
		{`{"label":{"a=b":true}}`, map[string][]string{"label": {"a=b"}}, false},
		{`{"status":["running"]}`, map[string][]string{"status": {"running"}}, false},
		{`{broken`, nil, true},
	}
	for _, c := range cases {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI("/containers/json")
		if c.raw != "" {
			ctx.QueryArgs().Set("filters", c.raw)
		}
		got, err := filtersParam(&ctx)
		if c.bad {
			if statusOf(err) != 400 {
				t.Errorf("%s: want 400, got %v", c.raw, err)
			}
			continue
		}
		if err != nil || len(got) != len(c.want) {
			t.Errorf("%s: %v %v", c.raw, got, err)
		}
		for k, v := range c.want {
			if len(got[k]) != len(v) || got[k][0] != v[0] {
				t.Errorf("%s: %v", c.raw, got)
			}
		}
	}
}

func TestFrameWriter(t *testing.T) {
	var buf bytes.Buffer
	fw := &frameWriter{w: &buf}
	fw.write(2, []byte("oops"), time.Time{})
	b := buf.Bytes()
	if b[0] != 2 || b[1]|b[2]|b[3] != 0 || binary.BigEndian.Uint32(b[4:8]) != 4 || string(b[8:]) != "oops" {
		t.Errorf("frame %q", b)
	}
	buf.Reset()
	(&frameWriter{w: &buf, raw: true}).write(1, []byte("raw"), time.Time{})
	if buf.String() != "raw" {
		t.Errorf("raw %q", buf.String())
	}
}

// FuzzDecodeCreate: any body gives a container config or a 400, never a
// panic.
func FuzzDecodeCreate(f *testing.F) {
	f.Add([]byte(`{"Image":"busybox","Cmd":["echo","hi"],"HostConfig":{"AutoRemove":true}}`))
	f.Add([]byte(`{`))
	f.Add([]byte(`{"Image":1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetBody(body)
		var req container.CreateRequest
		if err := decodeJSON(&ctx, &req); err != nil && statusOf(err) != 400 {
			t.Fatalf("decode error with status %d: %v", statusOf(err), err)
		}
	})
}

// FuzzFiltersParam: any filters value decodes or is a 400.
func FuzzFiltersParam(f *testing.F) {
	f.Add(`{"label":{"a":true}}`)
	f.Add(`{"a":["b"]}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, raw string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI("/containers/json")
		ctx.QueryArgs().Set("filters", raw)
		if _, err := filtersParam(&ctx); err != nil && statusOf(err) != 400 {
			t.Fatalf("status %d: %v", statusOf(err), err)
		}
	})
}
