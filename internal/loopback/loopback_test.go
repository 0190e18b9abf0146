package loopback

import "testing"

func TestHost(t *testing.T) {
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
		{"evil.example:8080", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := Host(tt.in); got != tt.want {
			t.Errorf("Host(%q) = %v", tt.in, got)
		}
	}
}
