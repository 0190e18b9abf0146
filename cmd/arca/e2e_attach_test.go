package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/arcavm/arca/internal/testenv"
)

// Attach with logs and without stream replays the log and ends, as on
// dockerd; with stream too, the live output follows the log.
func TestAttachLogsNoStream(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	name := testenv.Name(t)
	d.Docker(t, "run", "-d", "--name", name, img, "sh", "-c", "echo one; echo two >&2; sleep 1000").Must(t)
	defer d.Docker(t, "rm", "-f", name)
	deadline := time.Now().Add(10 * time.Second)
	for d.Docker(t, "logs", name).Stdout != "one\n" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := d.Client(t).ContainerAttach(ctx, name, client.ContainerAttachOptions{Logs: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	var out, errOut bytes.Buffer
	done := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(&out, &errOut, res.Reader)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("attach without stream did not end")
	}
	if out.String() != "one\n" || errOut.String() != "two\n" {
		t.Fatalf("stdout %q stderr %q", out.String(), errOut.String())
	}
	if !strings.Contains(d.Docker(t, "inspect", "-f", "{{.State.Running}}", name).Must(t).Stdout, "true") {
		t.Fatal("the container stopped")
	}
}
