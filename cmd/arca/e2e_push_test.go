package main

import (
	"context"
	"encoding/base64"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"

	"github.com/arcavm/arca/internal/testenv"
)

// TestPushAndPullBack: docker push to a registry streams dockerd's lines,
// a second push finds every layer there, and the image pulls back, after
// docker rmi, as the same image.
func TestPushAndPullBack(t *testing.T) {
	d := testenv.SharedDaemon(t)
	src := pulled(t, d)
	reg := testenv.Registry(t)
	dst := reg + "/pushed:v1"
	d.Docker(t, "tag", src, dst).Must(t)
	t.Cleanup(func() { d.Docker(t, "rmi", dst) })
	id := strings.TrimSpace(d.Docker(t, "image", "inspect", "-f", "{{.Id}}", src).Must(t).Stdout)

	since := itoa(int(time.Now().Unix()))
	out := d.Docker(t, "push", dst).Must(t).Stdout
	t.Logf("docker push %s:\n%s", dst, out)
	for _, want := range []string{"The push refers to repository [" + reg + "/pushed]", ": Pushed", "v1: digest: sha256:", " size: "} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	// the image now lists the digest it has in that repository
	digests := d.Docker(t, "image", "inspect", "-f", "{{json .RepoDigests}}", dst).Must(t).Stdout
	if !strings.Contains(digests, reg+"/pushed@sha256:") {
		t.Errorf("RepoDigests after push: %s", digests)
	}

	// a push event names the reference, and nothing else
	ev := d.Docker(t, "events", "--since", since, "--until", itoa(int(time.Now().Unix())+1),
		"--filter", "type=image", "--filter", "event=push", "--format", "{{.Actor.ID}} {{json .Actor.Attributes}}").Must(t).Stdout
	if want := dst + ` {"name":"` + dst + `"}`; !strings.Contains(ev, want) {
		t.Errorf("push events: %q, want %s", ev, want)
	}

	out = d.Docker(t, "push", dst).Must(t).Stdout
	if !strings.Contains(out, ": Layer already exists") || strings.Contains(out, ": Pushed") {
		t.Errorf("second push:\n%s", out)
	}

	// --all-tags: every tag of the repository, one after another
	d.Docker(t, "tag", src, reg+"/pushed:v2").Must(t)
	out = d.Docker(t, "push", "--all-tags", reg+"/pushed").Must(t).Stdout
	if !strings.Contains(out, "v1: digest: sha256:") || !strings.Contains(out, "v2: digest: sha256:") {
		t.Errorf("push --all-tags:\n%s", out)
	}

	// the API as SDKs use it: "name:tag" and no tag parameter pushes that
	// tag; the stream's lines have dockerd's shapes
	code, _, body := call(t, d, "POST", "/v1.45/images/"+dst+"/push", "")
	if code != 200 {
		t.Fatalf("API push: %d %s", code, body)
	}
	for _, want := range []string{
		`{"status":"The push refers to repository [` + reg + `/pushed]"}`,
		`{"status":"Layer already exists","progressDetail":{},"id":"`,
		`{"status":"v1: digest: sha256:`,
		`{"progressDetail":{},"aux":{"Tag":"v1","Digest":"sha256:`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("API push stream lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, "v2: digest") {
		t.Errorf("API push of %s pushed v2 too:\n%s", dst, body)
	}
	d.Docker(t, "rmi", reg+"/pushed:v2").Must(t)

	d.Docker(t, "rmi", dst).Must(t)
	d.Docker(t, "pull", dst).Must(t)
	if got := strings.TrimSpace(d.Docker(t, "image", "inspect", "-f", "{{.Id}}", dst).Must(t).Stdout); got != id {
		t.Errorf("pulled back %s, pushed %s", got, id)
	}

	r := d.Docker(t, "push", reg+"/never-tagged:v1").MustFail(t)
	if !strings.Contains(r.Stderr, "An image does not exist locally with the tag: "+reg+"/never-tagged") {
		t.Errorf("push of an unknown image: %s", r.Stderr)
	}
}

// TestLoginAndAuthRegistry: a registry behind a password. Its daemon is
// its own, since docker login writes the CLI's config.
func TestLoginAndAuthRegistry(t *testing.T) {
	plain := testenv.Registry(t)
	src := testenv.PushBusybox(t, plain)
	ar := testenv.AuthRegistry(t)
	d := testenv.StartDaemon(t, testenv.Options{})
	d.Docker(t, "pull", "-q", src).Must(t)
	dst := ar.Addr + "/private:1"
	d.Docker(t, "tag", src, dst).Must(t)

	r := d.Docker(t, "push", dst).MustFail(t)
	t.Logf("docker push without login:\n%s%s", r.Stdout, r.Stderr)
	if !strings.Contains(r.Stdout+r.Stderr, "no basic auth credentials") {
		t.Errorf("push without login: %s %s", r.Stdout, r.Stderr)
	}

	r = d.DockerStdin(t, strings.NewReader("wrong\n"), "login", "-u", ar.User, "--password-stdin", ar.Addr).MustFail(t)
	if want := "login attempt to http://" + ar.Addr + "/v2/ failed with status: 401 Unauthorized"; !strings.Contains(r.Stderr, want) {
		t.Errorf("login with a wrong password: %s, want %s", r.Stderr, want)
	}
	out := d.DockerStdin(t, strings.NewReader(ar.Password+"\n"), "login", "-u", ar.User, "--password-stdin", ar.Addr).Must(t).Stdout
	if !strings.Contains(out, "Login Succeeded") {
		t.Errorf("login: %s", out)
	}

	out = d.Docker(t, "push", dst).Must(t).Stdout
	if !strings.Contains(out, "1: digest: sha256:") {
		t.Errorf("push after login:\n%s", out)
	}
	d.Docker(t, "rmi", dst).Must(t)
	d.Docker(t, "pull", dst).Must(t)
	d.Docker(t, "rmi", dst).Must(t)
	// docker create pulls a missing image itself, with the stored login
	d.Docker(t, "create", "--name", "from-private", dst, "true").Must(t)
	d.Docker(t, "rm", "from-private").Must(t)
	d.Docker(t, "rmi", dst).Must(t)

	// the daemon kept nothing: once the CLI forgets, the registry refuses
	d.Docker(t, "logout", ar.Addr).Must(t)
	r = d.Docker(t, "pull", dst).MustFail(t)
	if want := `Head "http://` + ar.Addr + `/v2/private/manifests/1": no basic auth credentials`; !strings.Contains(r.Stderr, want) {
		t.Errorf("pull after logout: %s, want %s", r.Stderr, want)
	}

	// the Go SDK: login answers dockerd's body, and X-Registry-Auth alone
	// (nothing stored anywhere) pushes and pulls
	cli := d.Client(t)
	ctx := context.Background()
	res, err := cli.RegistryLogin(ctx, client.RegistryLoginOptions{Username: ar.User, Password: ar.Password, ServerAddress: ar.Addr})
	if err != nil || res.Auth.Status != "Login Succeeded" {
		t.Errorf("SDK login: %+v %v", res, err)
	}
	if _, err := cli.RegistryLogin(ctx, client.RegistryLoginOptions{Username: ar.User, Password: "wrong", ServerAddress: ar.Addr}); err == nil || !strings.Contains(err.Error(), "401 Unauthorized") {
		t.Errorf("SDK login with a wrong password: %v", err)
	}
	enc, err := authconfig.Encode(registry.AuthConfig{Username: ar.User, Password: ar.Password, ServerAddress: ar.Addr})
	if err != nil {
		t.Fatal(err)
	}
	d.Docker(t, "tag", src, ar.Addr+"/sdk:2").Must(t)
	push, err := cli.ImagePush(ctx, ar.Addr+"/sdk:2", client.ImagePushOptions{RegistryAuth: enc})
	if err != nil {
		t.Fatalf("SDK push: %v", err)
	}
	if err := push.Wait(ctx); err != nil {
		t.Errorf("SDK push stream: %v", err)
	}
	d.Docker(t, "rmi", ar.Addr+"/sdk:2").Must(t)
	pull, err := cli.ImagePull(ctx, ar.Addr+"/sdk:2", client.ImagePullOptions{RegistryAuth: enc})
	if err != nil {
		t.Fatalf("SDK pull: %v", err)
	}
	if err := pull.Wait(ctx); err != nil {
		t.Errorf("SDK pull stream: %v", err)
	}
	d.Docker(t, "image", "inspect", ar.Addr+"/sdk:2").Must(t)

	// nothing the daemon wrote holds the password, plain or as the CLI
	// encodes it
	secrets := []string{ar.Password, base64.StdEncoding.EncodeToString([]byte(ar.User + ":" + ar.Password))}
	if log := d.Log(); containsAny(log, secrets) {
		t.Errorf("the daemon's log holds the password")
	}
	filepath.WalkDir(d.Root(), func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil && containsAny(string(b), secrets) {
			t.Errorf("%s holds the password", p)
		}
		return nil
	})
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
