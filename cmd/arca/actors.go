package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/arcavm/arca/messages"
)

// runActors prints the daemon's live actor tree.
func runActors(args []string) error {
	fs := newFlags("actors")
	socket := fs.String("socket", socketFromEnv(), "daemon socket")
	asJSON := fs.Bool("json", false, "print the JSON as served")
	if err := parse(fs, args); err != nil {
		return err
	}
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", *socket)
		}},
	}
	resp, err := client.Get("http://arca/arca/v1/actors")
	if err != nil {
		return fmt.Errorf("ask the daemon on %s: %w", *socket, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read actor tree: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("actor tree: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if *asJSON {
		os.Stdout.Write(body)
		return nil
	}
	var root messages.ActorNode
	if err := json.Unmarshal(body, &root); err != nil {
		return fmt.Errorf("decode actor tree: %w", err)
	}
	printNode(os.Stdout, &root, "", true, true)
	return nil
}

// socketFromEnv honours DOCKER_HOST=unix://... as the docker CLI does.
func socketFromEnv() string {
	if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
		return strings.TrimPrefix(h, "unix://")
	}
	return defaultSocket
}

func printNode(w io.Writer, n *messages.ActorNode, prefix string, last, top bool) {
	name := n.Path
	if i := strings.LastIndexByte(name, '/'); i >= 0 && !top {
		name = name[i+1:]
	}
	line := fmt.Sprintf("%s  [%s] %s", name, n.Kind, n.State)
	if n.Kind == "container" && n.Detail != nil && n.Detail.Name != "" {
		line += " (" + n.Detail.Name + ")"
	}
	if n.Detail != nil && n.Detail.Kernel != "" {
		line += " (guest kernel " + n.Detail.Kernel + ")"
	}
	if n.Restarts > 0 {
		line += fmt.Sprintf(" (restarts: %d)", n.Restarts)
	}
	if t := n.LastStart; t != nil {
		line += fmt.Sprintf(" (last start %.0f ms: boot %.0f, agent %.0f, setup %.0f, network %.0f, process %.0f)",
			t.TotalMs, t.BootMs, t.AgentMs, t.SetupMs, t.NetworkMs, t.ProcessMs)
	}
	branch, childPrefix := "", ""
	if !top {
		branch, childPrefix = "├── ", prefix+"│   "
		if last {
			branch, childPrefix = "└── ", prefix+"    "
		}
	}
	fmt.Fprintln(w, prefix+branch+line)
	for i, c := range n.Children {
		printNode(w, c, childPrefix, i == len(n.Children)-1, false)
	}
}
