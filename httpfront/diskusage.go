package httpfront

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/volume"
	"github.com/valyala/fasthttp"

	"github.com/arcavm/arca/messages"
)

// diskUsageResponse is GET /system/df up to API 1.51 (the api module
// now only has the 1.52 shape); kinds not asked for are null, as in
// dockerd.
type diskUsageResponse struct {
	LayersSize int64
	Images     []image.Summary
	Containers []container.Summary
	Volumes    []volume.Volume
	BuildCache []build.CacheRecord
}

// diskUsageTypesFrom is the API version that reads the type parameter.
const diskUsageTypesFrom = "1.42"

func (s *Server) systemDiskUsage(ctx *fasthttp.RequestCtx) {
	q := &messages.DiskUsage{}
	types := ctx.QueryArgs().PeekMulti("type")
	if len(types) == 0 || compareVersions(apiVersion(ctx), diskUsageTypesFrom) < 0 {
		q.Images, q.Containers, q.Volumes, q.BuildCache = true, true, true, true
		types = nil
	}
	for _, t := range types {
		switch string(t) {
		case "container":
			q.Containers = true
		case "image":
			q.Images = true
		case "volume":
			q.Volumes = true
		case "build-cache":
			q.BuildCache = true
		default:
			writeError(ctx, messages.InvalidParameter("unknown object type: %s", t))
			return
		}
	}
	res, err := s.ask(s.sys.DiskUsage, q, 60*time.Second)
	if err != nil {
		writeError(ctx, err)
		return
	}
	du := res.(*messages.DiskUsageReply)
	if q.BuildCache && s.buildkit != nil {
		rctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if du.BuildCache, err = s.buildkit.DiskUsage(rctx); err != nil {
			writeError(ctx, messages.Internal("%v", err))
			return
		}
	}
	writeJSON(ctx, fasthttp.StatusOK, diskUsageResponse{
		LayersSize: du.LayersSize, Images: du.Images, Containers: du.Containers, Volumes: du.Volumes, BuildCache: du.BuildCache,
	})
}
