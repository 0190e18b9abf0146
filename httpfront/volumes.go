package httpfront

import (
	"github.com/moby/moby/api/types/volume"
	"github.com/valyala/fasthttp"

	"github.com/arcavm/arca/messages"
)

func nameParamVolume(ctx *fasthttp.RequestCtx) string {
	n, _ := ctx.UserValue("name").(string)
	return n
}

func (s *Server) volumeCreate(ctx *fasthttp.RequestCtx) {
	var req volume.CreateRequest
	if err := decodeJSON(ctx, &req); err != nil {
		writeError(ctx, err)
		return
	}
	res, err := s.ask(s.sys.Volumes, &messages.CreateVolume{Request: req}, quickDeadline)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusCreated, res.(*messages.VolumeReply).Volume)
}

func (s *Server) volumeList(ctx *fasthttp.RequestCtx) {
	filters, err := filtersParam(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	res, err := s.ask(s.sys.Volumes, &messages.ListVolumes{Filters: filters}, quickDeadline)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, volume.ListResponse{Volumes: res.(*messages.ListVolumesReply).Volumes, Warnings: []string{}})
}

func (s *Server) volumeInspect(ctx *fasthttp.RequestCtx) {
	res, err := s.ask(s.sys.Volumes, &messages.InspectVolume{Name: nameParamVolume(ctx)}, quickDeadline)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, res.(*messages.VolumeReply).Volume)
}

func (s *Server) volumeRemove(ctx *fasthttp.RequestCtx) {
	if _, err := s.ask(s.sys.Volumes, &messages.RemoveVolume{Name: nameParamVolume(ctx), Force: boolParam(ctx, "force")}, quickDeadline); err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

func (s *Server) volumePrune(ctx *fasthttp.RequestCtx) {
	filters, err := filtersParam(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	res, err := s.ask(s.sys.Volumes, &messages.PruneVolumes{Filters: filters}, quickDeadline)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, res.(*messages.PruneVolumesReply).Report)
}
