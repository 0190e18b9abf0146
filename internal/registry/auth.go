package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/arcavm/arca/internal/loopback"
	"github.com/regclient/regclient/config"
	"github.com/regclient/regclient/types/errs"
	"github.com/regclient/regclient/types/ref"
)

// Credentials are a client's for one registry, for one request. They are
// never written anywhere; String hides the secrets.
type Credentials struct {
	Username      string
	Password      string
	IdentityToken string // an OAuth refresh token, as docker login may hand out
}

func (c *Credentials) empty() bool {
	return c == nil || c.Username == "" && c.Password == "" && c.IdentityToken == ""
}

// Value receivers: a copy prints as safely as a pointer; LogValue and
// MarshalJSON keep the secrets out of slog and JSON.
func (c Credentials) String() string { return "user " + c.Username + " [redacted]" }

func (c Credentials) GoString() string { return c.String() }

func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

func (c Credentials) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

// hostConfig is regclient's view of one registry: plain HTTP for loopback
// ones, as dockerd assumes, and the request's credentials for it alone.
func hostConfig(registry string, creds *Credentials) config.Host {
	h := config.HostNewName(registry)
	if loopback.Host(registry) {
		h.TLS = config.TLSDisabled
	}
	if !creds.empty() {
		h.User, h.Pass, h.Token = creds.Username, creds.Password, creds.IdentityToken
	}
	return *h
}

// loginTimeout bounds each request of a login, as dockerd's 15 s client.
const loginTimeout = 15 * time.Second

// RegistryHost turns a docker login server address ("", "docker.io",
// "https://index.docker.io/v1/", "127.0.0.1:5000", "http://host/path")
// into the host its API is served on.
func RegistryHost(serverAddress string) string {
	s := serverAddress
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	switch s {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io":
		return "registry-1.docker.io"
	}
	return s
}

// endpoint is the /v2/ URL of a registry host.
func endpoint(host string) string {
	scheme := "https"
	if loopback.Host(host) {
		scheme = "http"
	}
	return scheme + "://" + host + "/v2/"
}

// Login checks creds against the registry at serverAddress as dockerd's
// loginV2 does: ping /v2/, answer its challenge (Basic with the password,
// Bearer by fetching a token from its realm with them) and ask /v2/ again.
// It returns the identity token to keep, which is empty unless the registry
// gave one. A refusal wraps ErrUnauthorized, with dockerd's words.
func Login(ctx context.Context, serverAddress string, creds *Credentials) (string, error) {
	return login(ctx, http.DefaultTransport, endpoint(RegistryHost(serverAddress)), creds)
}

func login(ctx context.Context, rt http.RoundTripper, ep string, creds *Credentials) (string, error) {
	if creds == nil {
		creds = &Credentials{}
	}
	c := &http.Client{Transport: rt, Timeout: loginTimeout}
	resp, err := get(ctx, c, ep, "")
	if err != nil {
		return "", &wrapped{msg: err.Error(), kind: ErrUnreachable, cause: err}
	}
	drainClose(resp)
	if resp.StatusCode == http.StatusOK {
		return creds.IdentityToken, nil
	}
	failed := func(status int) error {
		return fmt.Errorf("login attempt to %s failed with status: %d %s", ep, status, http.StatusText(status))
	}
	if resp.StatusCode != http.StatusUnauthorized {
		return "", failed(resp.StatusCode)
	}
	ch := parseChallenges(resp.Header.Values("WWW-Authenticate"))
	var authz string
	identity := creds.IdentityToken
	switch {
	case ch["bearer"] != nil:
		tok, refresh, err := fetchToken(ctx, c, ch["bearer"], creds)
		if err != nil {
			return "", &wrapped{msg: fmt.Sprintf("Get %q: %v", ep, err), kind: ErrUnauthorized, cause: err}
		}
		authz = "Bearer " + tok
		if refresh != "" {
			identity = refresh
		}
	case ch["basic"] != nil:
		if creds.Username == "" && creds.Password == "" {
			// not "unauthorized" for dockerd either: its status is 500
			return "", fmt.Errorf("Get %q: no basic auth credentials", ep)
		}
		req, _ := http.NewRequest(http.MethodGet, ep, nil)
		req.SetBasicAuth(creds.Username, creds.Password)
		authz = req.Header.Get("Authorization")
	default:
		return "", failed(resp.StatusCode)
	}
	resp, err = get(ctx, c, ep, authz)
	if err != nil {
		return "", &wrapped{msg: err.Error(), kind: ErrUnreachable, cause: err}
	}
	drainClose(resp)
	if resp.StatusCode != http.StatusOK {
		// dockerd words a refused password on a Basic registry so, and
		// answers 500: only a token server's refusal is "unauthorized"
		return "", failed(resp.StatusCode)
	}
	return identity, nil
}

func get(ctx context.Context, c *http.Client, u, authz string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "arca")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	return c.Do(req)
}

func drainClose(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// fetchToken asks a token server for a token with no scope, which is how
// dockerd checks a password: the server refuses a wrong one. With an
// identity token it is the OAuth refresh grant instead, as dockerd does.
// A refresh token the server hands out (offline_token) comes back too:
// dockerd answers it as the IdentityToken the CLI keeps in place of the
// password.
func fetchToken(ctx context.Context, c *http.Client, params map[string]string, creds *Credentials) (token, refresh string, err error) {
	realm := params["realm"]
	u, err := url.Parse(realm)
	if err != nil || realm == "" {
		return "", "", fmt.Errorf("invalid token realm %q", realm)
	}
	var req *http.Request
	if creds.IdentityToken != "" {
		form := url.Values{}
		form.Set("grant_type", "refresh_token")
		form.Set("refresh_token", creds.IdentityToken)
		form.Set("service", params["service"])
		form.Set("client_id", "docker")
		form.Set("access_type", "offline")
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
		if err != nil {
			return "", "", err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		q := u.Query()
		if s := params["service"]; s != "" {
			q.Set("service", s)
		}
		q.Set("client_id", "docker")
		q.Set("offline_token", "true")
		if creds.Username != "" {
			q.Set("account", creds.Username)
		}
		u.RawQuery = q.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return "", "", err
		}
		if creds.Username != "" || creds.Password != "" {
			req.SetBasicAuth(creds.Username, creds.Password)
		}
	}
	req.Header.Set("User-Agent", "arca")
	resp, err := c.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusUnauthorized {
		return "", "", errors.New("unauthorized: " + tokenErrorDetail(body))
	}
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("token server answered %s", resp.Status)
	}
	var tr struct {
		Token        string `json:"token"`
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		return "", "", fmt.Errorf("decode token response: %w", err)
	}
	if tr.Token == "" {
		tr.Token = tr.AccessToken
	}
	if tr.Token == "" {
		return "", "", errors.New("token server gave no token")
	}
	return tr.Token, tr.RefreshToken, nil
}

// tokenErrorDetail reads a token server's refusal as distribution's client
// does: {"details": ...} (Docker Hub), else the first of {"errors": [...]},
// else "authentication required".
func tokenErrorDetail(body []byte) string {
	var d struct {
		Details string `json:"details"`
		Errors  []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &d) == nil {
		if d.Details != "" {
			return d.Details
		}
		if len(d.Errors) > 0 && d.Errors[0].Message != "" {
			return d.Errors[0].Message
		}
	}
	return "authentication required"
}

// parseChallenges reads WWW-Authenticate headers into scheme (lower case)
// → parameters. Quoted values may hold commas.
func parseChallenges(headers []string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, h := range headers {
		scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
		params := map[string]string{}
		for rest = strings.TrimSpace(rest); rest != ""; {
			key, after, ok := strings.Cut(rest, "=")
			if !ok {
				break
			}
			key = strings.ToLower(strings.TrimSpace(key))
			var val string
			if strings.HasPrefix(after, `"`) {
				end := strings.Index(after[1:], `"`)
				if end < 0 {
					val, rest = after[1:], ""
				} else {
					val, rest = after[1:1+end], after[2+end:]
				}
			} else {
				val, rest, _ = strings.Cut(after, ",")
				rest = "," + rest
			}
			params[key] = strings.TrimSpace(val)
			rest = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ","))
		}
		out[strings.ToLower(scheme)] = params
	}
	return out
}

// challengeScheme pings a registry and says how it asks for credentials:
// "basic", "bearer" or "" (it does not, or could not be asked).
func challengeScheme(ctx context.Context, registry string) string {
	c := &http.Client{Timeout: loginTimeout}
	resp, err := get(ctx, c, endpoint(registry), "")
	if err != nil {
		return ""
	}
	drainClose(resp)
	if resp.StatusCode != http.StatusUnauthorized {
		return ""
	}
	ch := parseChallenges(resp.Header.Values("WWW-Authenticate"))
	switch {
	case ch["bearer"] != nil:
		return "bearer"
	case ch["basic"] != nil:
		return "basic"
	}
	return ""
}

// manifestError words a refused manifest fetch as dockerd does, which
// depends on the credentials given and on how the registry asks for them:
// a Basic registry asked without any is "no basic auth credentials", one
// that refused them is "unauthorized: authentication required"; a token
// registry asked without any keeps the "pull access denied" wording.
func (p *Puller) manifestError(ctx context.Context, r ref.Ref, refStr string, err error) error {
	if ctx.Err() == nil && errors.Is(err, errs.ErrHTTPUnauthorized) {
		u := manifestURL(r)
		switch {
		case !p.Credentials.empty():
			return &wrapped{msg: fmt.Sprintf("Head %q: unauthorized: authentication required", u), kind: ErrUnauthorized, cause: err}
		case challengeScheme(ctx, r.Registry) == "basic":
			return &wrapped{msg: fmt.Sprintf("Head %q: no basic auth credentials", u), kind: ErrUnauthorized, cause: err}
		}
	}
	return manifestError(ctx, refStr, err)
}

func manifestURL(r ref.Ref) string {
	tagOrDigest := r.Tag
	if r.Digest != "" {
		tagOrDigest = r.Digest
	}
	return strings.TrimSuffix(endpoint(r.Registry), "/v2/") + "/v2/" + r.Repository + "/manifests/" + tagOrDigest
}
