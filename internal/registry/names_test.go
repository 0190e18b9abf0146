package registry

import "testing"

func TestFamiliar(t *testing.T) {
	tests := []struct{ in, want string }{
		{"docker.io/library/busybox:latest", "busybox:latest"},
		{"docker.io/library/busybox@sha256:abc", "busybox@sha256:abc"},
		{"docker.io/foo/bar:1", "foo/bar:1"},
		{"docker.io/library/a/b:1", "library/a/b:1"},
		{"127.0.0.1:5000/busybox:latest", "127.0.0.1:5000/busybox:latest"},
		{"ghcr.io/library/x:1", "ghcr.io/library/x:1"},
	}
	for _, tt := range tests {
		if got := Familiar(tt.in); got != tt.want {
			t.Errorf("Familiar(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if m := StatusDownloaded("docker.io/library/busybox:latest"); m.Status != "Status: Downloaded newer image for busybox:latest" {
		t.Errorf("StatusDownloaded = %q", m.Status)
	}
	if m := StatusUpToDate("127.0.0.1:5000/busybox:latest"); m.Status != "Status: Image is up to date for 127.0.0.1:5000/busybox:latest" {
		t.Errorf("StatusUpToDate = %q", m.Status)
	}
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"localhost", true},
		{"localhost:5000", true},
		{"127.0.0.1:5000", true},
		{"127.1.2.3", true},
		{"[::1]:5000", true},
		{"::1", true},
		{"docker.io", false},
		{"10.0.0.1:5000", false},
		{"localhost.example.com:5000", false},
	}
	for _, tt := range tests {
		if got := isLoopback(tt.in); got != tt.want {
			t.Errorf("isLoopback(%q) = %v", tt.in, got)
		}
	}
}
