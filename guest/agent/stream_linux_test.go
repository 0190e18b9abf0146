package agent

import (
	"testing"
)

func TestParseStream(t *testing.T) {
	tests := []struct {
		in      string
		want    streamSpec
		wantErr bool
	}{
		{in: "fd:3", want: streamSpec{kind: "fd", num: 3}},
		{in: "vsock:1024", want: streamSpec{kind: "vsock", num: 1024}},
		{in: "file:/dev/vport0p1", want: streamSpec{kind: "file", path: "/dev/vport0p1"}},
		{in: "fd:1", wantErr: true},
		{in: "fd:x", wantErr: true},
		{in: "vsock:-1", wantErr: true},
		{in: "tcp:1", wantErr: true},
		{in: "fd", wantErr: true},
		{in: "file:", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseStream(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseStream(%q) = %+v, %v", tt.in, got, err)
		}
	}
}
