package agent

import (
	"context"
	"io"

	"github.com/arcavm/arca/guest/wire"
)

func (a *Agent) Top(ctx context.Context, psArgs string) (wire.TopResult, error) {
	return wire.TopResult{}, wire.Errorf(wire.KindInvalid, "not yet")
}

func (a *Agent) ArchiveStat(ctx context.Context, path string) (wire.PathStat, error) {
	return wire.PathStat{}, wire.Errorf(wire.KindInvalid, "not yet")
}

func (a *Agent) ArchiveGet(ctx context.Context, path string) (wire.PathStat, func(io.Writer) error, error) {
	return wire.PathStat{}, nil, wire.Errorf(wire.KindInvalid, "not yet")
}

func (a *Agent) ArchivePut(ctx context.Context, dir string, opts wire.ArchivePutOptions) (func(io.Reader) error, error) {
	return nil, wire.Errorf(wire.KindInvalid, "not yet")
}
