package httpfront

import (
	"errors"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/valyala/fasthttp"

	"github.com/arcavm/arca/messages"
)

// statusOf is the one mapping from error kinds to HTTP status codes.
func statusOf(err error) int {
	if errors.Is(err, actor.ErrTimeout) {
		return fasthttp.StatusServiceUnavailable
	}
	switch messages.KindOf(err) {
	case messages.KindInvalidParameter:
		return fasthttp.StatusBadRequest
	case messages.KindNotFound:
		return fasthttp.StatusNotFound
	case messages.KindConflict:
		return fasthttp.StatusConflict
	case messages.KindNotModified:
		return fasthttp.StatusNotModified
	case messages.KindForbidden:
		return fasthttp.StatusForbidden
	case messages.KindUnavailable:
		return fasthttp.StatusServiceUnavailable
	case messages.KindNotImplemented:
		return fasthttp.StatusNotImplemented
	case messages.KindUnauthorized:
		return fasthttp.StatusUnauthorized
	}
	return fasthttp.StatusInternalServerError
}

type errorBody struct {
	Message string `json:"message"`
}

// writeError answers with Docker's error shape. 304 carries no body.
func writeError(ctx *fasthttp.RequestCtx, err error) {
	code := statusOf(err)
	ctx.SetStatusCode(code)
	if code == fasthttp.StatusNotModified {
		ctx.ResetBody()
		return
	}
	msg := err.Error()
	if errors.Is(err, actor.ErrTimeout) {
		msg = "the daemon did not answer in time"
	}
	ctx.SetContentType("application/json")
	b, _ := marshalJSON(errorBody{Message: msg})
	ctx.SetBody(b)
}
