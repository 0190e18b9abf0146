package httpfront

import (
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/moby/moby/api/types/registry"
	"github.com/valyala/fasthttp"
)

func TestBuildAuths(t *testing.T) {
	auths := map[string]registry.AuthConfig{
		"https://index.docker.io/v1/": {Username: "hub", Password: "p"},
		"localhost:5000":              {Auth: base64.StdEncoding.EncodeToString([]byte("loc:pw"))},
		"empty.example":               {},
	}
	raw, _ := json.Marshal(auths)
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.Set("X-Registry-Config", base64.URLEncoding.EncodeToString(raw))
	got := buildAuths(&ctx)
	tests := []struct {
		ref, user string
	}{
		{"busybox", "hub"},
		{"docker.io/library/busybox:latest", "hub"},
		{"localhost:5000/x:1", "loc"},
		{"empty.example/x", ""},
		{"other.example/x", ""},
	}
	for _, tt := range tests {
		a := authFor(got, tt.ref)
		user := ""
		if a != nil {
			user = a.Username
		}
		if user != tt.user {
			t.Errorf("authFor(%q) user %q, want %q", tt.ref, user, tt.user)
		}
	}
	var none fasthttp.RequestCtx
	none.Request.Header.Set("X-Registry-Config", "!!not base64")
	if buildAuths(&none) != nil {
		t.Error("an undecodable header gave credentials")
	}
}
