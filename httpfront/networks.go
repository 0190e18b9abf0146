package httpfront

import (
	"github.com/moby/moby/api/types/network"
	"github.com/valyala/fasthttp"

	"github.com/arcavm/arca/messages"
)

func (s *Server) networkCreate(ctx *fasthttp.RequestCtx) {
	var req network.CreateRequest
	if err := decodeJSON(ctx, &req); err != nil {
		writeError(ctx, err)
		return
	}
	res, err := s.ask(s.sys.Networks, &messages.CreateNetwork{Request: req}, quickDeadline)
	if err != nil {
		writeError(ctx, err)
		return
	}
	r := res.(*messages.CreateNetworkReply)
	writeJSON(ctx, fasthttp.StatusCreated, network.CreateResponse{ID: r.ID, Warning: r.Warning})
}

func (s *Server) networkList(ctx *fasthttp.RequestCtx) {
	filters, err := filtersParam(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	res, err := s.ask(s.sys.Networks, &messages.ListNetworks{Filters: filters}, quickDeadline)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, res.(*messages.ListNetworksReply).Networks)
}

func (s *Server) networkInspect(ctx *fasthttp.RequestCtx) {
	res, err := s.ask(s.sys.Networks, &messages.InspectNetwork{Ref: idParam(ctx)}, quickDeadline)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, res.(*messages.InspectNetworkReply).Network)
}

func (s *Server) networkRemove(ctx *fasthttp.RequestCtx) {
	if _, err := s.ask(s.sys.Networks, &messages.RemoveNetwork{Ref: idParam(ctx)}, quickDeadline); err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

func (s *Server) networkPrune(ctx *fasthttp.RequestCtx) {
	filters, err := filtersParam(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	res, err := s.ask(s.sys.Networks, &messages.PruneNetworks{Filters: filters}, quickDeadline)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, res.(*messages.PruneNetworksReply).Report)
}

func (s *Server) networkConnect(ctx *fasthttp.RequestCtx) {
	var req network.ConnectRequest
	if err := decodeJSON(ctx, &req); err != nil {
		writeError(ctx, err)
		return
	}
	if req.Container == "" {
		writeError(ctx, messages.InvalidParameter("no container specified"))
		return
	}
	_, err := s.ask(s.sys.Networks, &messages.ConnectNetwork{
		Ref: messages.Ref{ID: req.Container}, Network: idParam(ctx), Endpoint: req.EndpointConfig,
	}, startDeadline+behindStart)
	if err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
}

func (s *Server) networkDisconnect(ctx *fasthttp.RequestCtx) {
	var req network.DisconnectRequest
	if err := decodeJSON(ctx, &req); err != nil {
		writeError(ctx, err)
		return
	}
	if req.Container == "" {
		writeError(ctx, messages.InvalidParameter("no container specified"))
		return
	}
	_, err := s.ask(s.sys.Networks, &messages.DisconnectNetwork{
		Ref: messages.Ref{ID: req.Container}, Network: idParam(ctx), Force: req.Force,
	}, quickDeadline+behindStart)
	if err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
}
