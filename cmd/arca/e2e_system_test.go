package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/arcavm/arca/internal/testenv"
	"github.com/arcavm/arca/messages"
)

func TestPing(t *testing.T) {
	d := testenv.SharedDaemon(t)
	for _, method := range []string{"GET", "HEAD"} {
		code, h, body := call(t, d, method, "/_ping", "")
		if code != 200 {
			t.Fatalf("%s /_ping: %d %s", method, code, body)
		}
		if h.Get("Api-Version") == "" || h.Get("Ostype") != "linux" {
			t.Errorf("%s /_ping headers: %v", method, h)
		}
		if method == "GET" && body != "OK" {
			t.Errorf("GET /_ping body %q", body)
		}
	}
}

func TestAPIVersions(t *testing.T) {
	d := testenv.SharedDaemon(t)
	cases := []struct {
		path     string
		code     int
		contains string
	}{
		{"/v1.24/version", 200, `"ApiVersion"`},
		{"/v1.51/version", 200, `"ApiVersion"`},
		{"/v1.99/version", 400, "client version 1.99 is too new. Maximum supported API version is"},
		{"/v1.12/version", 400, "client version 1.12 is too old"},
		{"/version", 200, `"MinAPIVersion":"1.24"`},
		{"/v1.45/nope", 404, "page not found"},
	}
	for _, c := range cases {
		code, _, body := call(t, d, "GET", c.path, "")
		if code != c.code || !strings.Contains(body, c.contains) {
			t.Errorf("GET %s = %d %s; want %d containing %q", c.path, code, body, c.code, c.contains)
		}
	}
}

func TestVersionAndInfo(t *testing.T) {
	d := testenv.SharedDaemon(t)
	out := d.Docker(t, "version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}").Must(t).Stdout
	if !strings.HasPrefix(out, "1.") || !strings.Contains(out, "linux") {
		t.Errorf("docker version: %q", out)
	}
	info := d.Docker(t, "info", "--format", "{{json .}}").Must(t).Stdout
	var v struct {
		OSType, KernelVersion, OperatingSystem, Driver string
		NCPU                                           int
		MemTotal                                       int64
		Containers, Images                             int
	}
	if err := json.Unmarshal([]byte(info), &v); err != nil {
		t.Fatalf("docker info json: %v\n%s", err, info)
	}
	if v.OSType != "linux" || v.KernelVersion == "" || v.NCPU < 1 || v.MemTotal <= 0 || !strings.Contains(v.Driver, "sandbox") {
		t.Errorf("docker info: %+v", v)
	}
	// The human form must print without errors too.
	d.Docker(t, "info").Must(t)
}

func TestActorTree(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, strings.TrimSpace(d.Docker(t, "create", "--name", testenv.Name(t, string(rune('a'+i))), img, "true").Must(t).Stdout))
	}
	tree := func() (*messages.ActorNode, string) {
		code, _, body := call(t, d, "GET", "/arca/v1/actors", "")
		if code != 200 {
			t.Fatalf("actor tree: %d %s", code, body)
		}
		var root messages.ActorNode
		if err := json.Unmarshal([]byte(body), &root); err != nil {
			t.Fatal(err)
		}
		var containers *messages.ActorNode
		var walk func(n *messages.ActorNode)
		walk = func(n *messages.ActorNode) {
			if strings.HasSuffix(n.Path, "/containers") {
				containers = n
			}
			for _, c := range n.Children {
				walk(c)
			}
		}
		walk(&root)
		if containers == nil {
			t.Fatalf("no containers supervisor in %s", body)
		}
		return containers, body
	}
	containers, body := tree()
	for _, id := range ids {
		found := false
		for _, c := range containers.Children {
			if strings.HasSuffix(c.Path, "/"+id) && c.Kind == "container" && c.State == "created" && c.LastStart == nil {
				found = true
			}
		}
		if !found {
			t.Errorf("container %s not under %s as created and never started: %s", id[:12], containers.Path, body)
		}
	}
	// A started container shows where its start's time went, step by step.
	d.Docker(t, "start", "-a", ids[0]).Must(t)
	containers, body = tree()
	for _, c := range containers.Children {
		if !strings.HasSuffix(c.Path, "/"+ids[0]) {
			continue
		}
		st := c.LastStart
		if st == nil || st.TotalMs <= 0 || st.BootMs <= 0 || st.AgentMs <= 0 || st.ProcessMs <= 0 {
			t.Fatalf("started container's timings: %+v in %s", st, body)
		}
		if sum := st.BootMs + st.AgentMs + st.SetupMs + st.NetworkMs + st.ProcessMs; sum > st.TotalMs+0.5 || sum < st.TotalMs-0.5 {
			t.Errorf("steps add up to %.1f ms, total %.1f ms", sum, st.TotalMs)
		}
	}
	// The CLI form prints the same tree.
	out := runArca(t, "actors", "--socket", d.Socket())
	for _, id := range ids {
		if !strings.Contains(out, id) {
			t.Errorf("arca actors lacks %s:\n%s", id[:12], out)
		}
	}
	d.Docker(t, append([]string{"rm"}, ids...)...).Must(t)
}

func runArca(t *testing.T, args ...string) string {
	t.Helper()
	bins := testenv.Build(t)
	out, err := exec.Command(bins.Arca, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("arca %v: %v\n%s", args, err, out)
	}
	return string(out)
}
