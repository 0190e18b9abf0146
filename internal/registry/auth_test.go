package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

func TestParseChallenges(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want map[string]map[string]string
	}{
		{[]string{`Basic realm="arca-test"`}, map[string]map[string]string{"basic": {"realm": "arca-test"}}},
		{[]string{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io"`},
			map[string]map[string]string{"bearer": {"realm": "https://auth.docker.io/token", "service": "registry.docker.io"}}},
		{[]string{`Bearer realm="http://h/t?a=1,b",service=reg, scope="repository:x:pull,push"`},
			map[string]map[string]string{"bearer": {"realm": "http://h/t?a=1,b", "service": "reg", "scope": "repository:x:pull,push"}}},
		{[]string{`Basic`}, map[string]map[string]string{"basic": {}}},
	} {
		if got := parseChallenges(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseChallenges(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestRegistryHost(t *testing.T) {
	for in, want := range map[string]string{
		"":                            "registry-1.docker.io",
		"docker.io":                   "registry-1.docker.io",
		"https://index.docker.io/v1/": "registry-1.docker.io",
		"127.0.0.1:5000":              "127.0.0.1:5000",
		"http://localhost:5000/path":  "localhost:5000",
		"registry.example.com":        "registry.example.com",
	} {
		if got := RegistryHost(in); got != want {
			t.Errorf("RegistryHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// A token registry: the password goes to the realm, whose refusal is
// dockerd's "unauthorized: <details>", and the token to /v2/.
func TestLoginBearer(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			if r.Method == http.MethodPost {
				r.ParseForm()
				if r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("refresh_token") != "refresh-1" {
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				fmt.Fprint(w, `{"access_token":"tok"}`)
				return
			}
			u, p, _ := r.BasicAuth()
			if u != "joe" || p != "right" || r.URL.Query().Get("service") != "test" || r.URL.Query().Get("account") != "joe" {
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"details":"incorrect username or password"}`)
				return
			}
			fmt.Fprint(w, `{"token":"tok","refresh_token":"refresh-1"}`)
		case "/v2/":
			if r.Header.Get("Authorization") == "Bearer tok" {
				return
			}
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="test"`, srv.URL))
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	ep := srv.URL + "/v2/"
	ctx := context.Background()
	// the refresh token the server gives is the identity token to keep
	if id, err := login(ctx, http.DefaultTransport, ep, &Credentials{Username: "joe", Password: "right"}); err != nil || id != "refresh-1" {
		t.Errorf("login: %q %v", id, err)
	}
	// and it logs in again without the password
	if id, err := login(ctx, http.DefaultTransport, ep, &Credentials{Username: "joe", IdentityToken: "refresh-1"}); err != nil || id != "refresh-1" {
		t.Errorf("login with the identity token: %q %v", id, err)
	}
	if _, err := login(ctx, http.DefaultTransport, ep, &Credentials{Username: "joe", IdentityToken: "stale"}); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("login with a stale identity token: %v", err)
	}
	_, err := login(ctx, http.DefaultTransport, ep, &Credentials{Username: "joe", Password: "wrong"})
	want := fmt.Sprintf("Get %q: unauthorized: incorrect username or password", ep)
	if err == nil || err.Error() != want || !errors.Is(err, ErrUnauthorized) {
		t.Errorf("wrong password: %v, want %s (unauthorized)", err, want)
	}
	_, err = login(ctx, http.DefaultTransport, "http://127.0.0.1:1/v2/", nil)
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("unreachable: %v", err)
	}
}

func TestCredentialsHideSecrets(t *testing.T) {
	c := &Credentials{Username: "joe", Password: "hunter2", IdentityToken: "idtok"}
	j, _ := json.Marshal(struct{ P, V any }{c, *c})
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "creds", c, "value", *c)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %+v", c, c, c, *c), string(j), buf.String()} {
		if strings.Contains(s, "hunter2") || strings.Contains(s, "idtok") {
			t.Errorf("secret shown: %s", s)
		}
	}
}
