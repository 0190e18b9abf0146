package messages

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// However a message carrying credentials is printed or logged, the
// password and tokens do not show.
func TestRegistryAuthHidesSecrets(t *testing.T) {
	a := &RegistryAuth{Username: "joe", Password: "hunter2", IdentityToken: "idtok", RegistryToken: "regtok", ServerAddress: "r:5000"}
	m := &PushImage{Name: "r:5000/x", Tag: "1", Auth: a}
	var outs []string
	outs = append(outs, fmt.Sprint(m), fmt.Sprintf("%+v", m), fmt.Sprintf("%#v", m), fmt.Sprint(*m), fmt.Sprintf("%+v", *a))
	b, err := json.Marshal(struct {
		Auth  *RegistryAuth
		Value RegistryAuth
	}{a, *a})
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(b))
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(w *bytes.Buffer) slog.Handler { return slog.NewTextHandler(w, nil) },
		func(w *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(w, nil) },
	} {
		var buf bytes.Buffer
		slog.New(h(&buf)).Info("dead letter", "message", m, "auth", a)
		outs = append(outs, buf.String())
	}
	for _, s := range outs {
		for _, secret := range []string{"hunter2", "idtok", "regtok"} {
			if strings.Contains(s, secret) {
				t.Errorf("%q shows in %s", secret, s)
			}
		}
	}
}
