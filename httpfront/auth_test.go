package httpfront

import (
	"encoding/base64"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/arcavm/arca/messages"
)

func TestRegistryAuthHeader(t *testing.T) {
	b64 := base64.URLEncoding.EncodeToString
	for _, tc := range []struct {
		name, header string
		want         *messages.RegistryAuth
	}{
		{"absent", "", nil},
		{"empty object", b64([]byte("{}")), nil},
		{"not base64", "%%%", nil},
		{"not json", b64([]byte("nope")), nil},
		{"user and password", b64([]byte(`{"username":"joe","password":"p+/w?","serveraddress":"127.0.0.1:5000"}`)),
			&messages.RegistryAuth{Username: "joe", Password: "p+/w?", ServerAddress: "127.0.0.1:5000"}},
		{"unpadded", base64.RawURLEncoding.EncodeToString([]byte(`{"username":"joe","password":"x"}`)),
			&messages.RegistryAuth{Username: "joe", Password: "x"}},
		{"auth field", b64([]byte(`{"auth":"` + base64.StdEncoding.EncodeToString([]byte("joe:a:b")) + `"}`)),
			&messages.RegistryAuth{Username: "joe", Password: "a:b"}},
		{"identity token", b64([]byte(`{"identitytoken":"tok"}`)), &messages.RegistryAuth{IdentityToken: "tok"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := &fasthttp.RequestCtx{}
			if tc.header != "" {
				ctx.Request.Header.Set("X-Registry-Auth", tc.header)
			}
			got := registryAuth(ctx)
			if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}
