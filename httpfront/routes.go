package httpfront

import (
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"
)

// routes is the whole API surface in one table.
func (s *Server) routes() {
	r := s.router
	r.HandleMethodNotAllowed = false
	r.NotFound = func(ctx *fasthttp.RequestCtx) {
		writeJSON(ctx, fasthttp.StatusNotFound, errorBody{Message: "page not found"})
	}

	// System.
	r.GET("/_ping", s.ping)
	r.HEAD("/_ping", s.ping)
	r.GET("/version", s.version)
	r.GET("/info", s.systemInfo)
	r.GET("/events", s.systemEvents)
	r.GET("/system/df", s.systemDiskUsage)
	r.POST("/auth", s.authLogin)

	// Containers.
	r.POST("/containers/create", s.containerCreate)
	r.GET("/containers/json", s.containerList)
	r.POST("/containers/prune", s.containerPrune)
	r.GET("/containers/{id}/json", s.containerInspect)
	r.POST("/containers/{id}/start", s.containerStart)
	r.POST("/containers/{id}/stop", s.containerStop)
	r.POST("/containers/{id}/kill", s.containerKill)
	r.POST("/containers/{id}/restart", s.containerRestart)
	r.POST("/containers/{id}/rename", s.containerRename)
	r.POST("/containers/{id}/pause", s.containerPause)
	r.POST("/containers/{id}/unpause", s.containerUnpause)
	r.GET("/containers/{id}/top", s.containerTop)
	r.GET("/containers/{id}/stats", s.containerStats)
	r.HEAD("/containers/{id}/archive", s.archiveHead)
	r.GET("/containers/{id}/archive", s.archiveGet)
	r.PUT("/containers/{id}/archive", s.archivePut)
	r.GET("/containers/{id}/export", s.containerExport)
	r.POST("/commit", s.containerCommit)
	r.POST("/build", s.imageBuild)
	r.POST("/build/prune", s.buildPrune)
	r.POST("/grpc", s.buildkitGRPC)
	r.GET("/distribution/{name:*}", s.distributionInspect)
	r.POST("/session", s.buildkitSession)
	r.GET("/containers/{id}/changes", s.containerChanges)
	r.POST("/containers/{id}/wait", s.containerWait)
	r.POST("/containers/{id}/attach", s.containerAttach)
	r.POST("/containers/{id}/resize", s.containerResize)
	r.GET("/containers/{id}/logs", s.containerLogs)
	r.DELETE("/containers/{id}", s.containerRemove)
	r.POST("/containers/{id}/exec", s.execCreate)
	r.POST("/exec/{id}/start", s.execStart)
	r.GET("/exec/{id}/json", s.execInspect)
	r.POST("/exec/{id}/resize", s.execResize)

	// Networks.
	r.POST("/networks/create", s.networkCreate)
	r.GET("/networks", s.networkList)
	r.POST("/networks/prune", s.networkPrune)
	r.GET("/networks/{id}", s.networkInspect)
	r.DELETE("/networks/{id}", s.networkRemove)
	r.POST("/networks/{id}/connect", s.networkConnect)
	r.POST("/networks/{id}/disconnect", s.networkDisconnect)

	// Volumes.
	r.POST("/volumes/create", s.volumeCreate)
	r.GET("/volumes", s.volumeList)
	r.POST("/volumes/prune", s.volumePrune)
	r.GET("/volumes/{name}", s.volumeInspect)
	r.DELETE("/volumes/{name}", s.volumeRemove)

	// Images: names contain slashes, so one catch-all per method,
	// dispatched on the suffix.
	r.POST("/images/create", s.imageCreate)
	r.GET("/images/json", s.imageList)
	r.POST("/images/load", s.imageLoad)
	r.POST("/images/prune", s.imagePrune)
	r.GET("/images/get", s.imageSaveMany)
	r.GET("/images/{name:*}", s.imageGet)
	r.POST("/images/{name:*}", s.imagePost)
	r.DELETE("/images/{name:*}", s.imageRemove)

	// The rest of Docker's API: 501, not 404.
	registerUnimplemented(r)

	// Arca's own.
	r.GET("/arca/v1/actors", s.actorTree)
	if s.info.Debug {
		// As dockerd in debug mode: profiles on the API socket.
		r.GET("/debug/pprof/", pprofhandler.PprofHandler)
		r.GET("/debug/pprof/{name:*}", pprofhandler.PprofHandler)
	}
}
