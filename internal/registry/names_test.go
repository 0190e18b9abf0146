package registry

import "testing"

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
