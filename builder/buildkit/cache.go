//go:build linux

package buildkit

import (
	"context"
	"fmt"

	"github.com/moby/buildkit/client"
	"github.com/moby/moby/api/types/build"

	"github.com/arcavm/arca/messages"
)

// DiskUsage lists the build cache, as system df and buildx du show it.
func (e *Engine) DiskUsage(ctx context.Context) ([]build.CacheRecord, error) {
	c, err := e.Client(ctx)
	if err != nil {
		return nil, fmt.Errorf("build cache: %w", err)
	}
	defer c.Close()
	infos, err := c.DiskUsage(ctx)
	if err != nil {
		return nil, fmt.Errorf("build cache: %w", err)
	}
	out := make([]build.CacheRecord, 0, len(infos))
	for _, u := range infos {
		out = append(out, build.CacheRecord{
			ID: u.ID, Parents: u.Parents, Type: string(u.RecordType), Description: u.Description,
			InUse: u.InUse, Shared: u.Shared, Size: u.Size, CreatedAt: u.CreatedAt,
			LastUsedAt: u.LastUsedAt, UsageCount: u.UsageCount,
		})
	}
	return out, nil
}

// Prune removes build cache records as opts say.
func (e *Engine) Prune(ctx context.Context, opts messages.BuildCachePrune) (build.CachePruneReport, error) {
	var rep build.CachePruneReport
	c, err := e.Client(ctx)
	if err != nil {
		return rep, fmt.Errorf("prune build cache: %w", err)
	}
	defer c.Close()
	ch := make(chan client.UsageInfo)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for u := range ch {
			rep.CachesDeleted = append(rep.CachesDeleted, u.ID)
			rep.SpaceReclaimed += uint64(u.Size)
		}
	}()
	po := []client.PruneOption{
		client.WithFilter(opts.Filters),
		client.WithKeepOpt(opts.KeepDuration, opts.ReservedSpace, opts.MaxUsedSpace, opts.MinFreeSpace),
	}
	if opts.All {
		po = append(po, client.PruneAll)
	}
	err = c.Prune(ctx, ch, po...)
	close(ch)
	<-done
	if err != nil {
		return rep, fmt.Errorf("prune build cache: %w", err)
	}
	return rep, nil
}
