package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestSelectDriverOnLinux(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name, want, wantErr string
	}{
		{"sandbox", "sandbox", ""},
		{"vz", "", "needs macOS"},
		{"hyperv", "", "unknown driver"},
	} {
		d, _, err := selectDriver(tc.name, driverOptions{Agent: "/nonexistent/arca-agent", Kit: "/nonexistent/kit", Root: t.TempDir(), Log: log})
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("--driver %s: %v, want an error mentioning %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || d.Name() != tc.want {
			t.Errorf("--driver %s: %v, %v", tc.name, d, err)
		}
	}
}
