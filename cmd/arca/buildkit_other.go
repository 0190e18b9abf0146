//go:build !linux

package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/arcavm/arca/actors"
	"github.com/arcavm/arca/persistence/blobs"
)

// startBuildKit: BuildKit's worker needs overlayfs on the host, so macOS
// builds use the classic builder for now.
func startBuildKit(context.Context, string, *actors.System, *blobs.Store, *slog.Logger) (buildKitEngine, error) {
	return nil, errors.New("BuildKit runs on Linux hosts only for now")
}
