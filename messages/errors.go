// Package messages is the vocabulary between httpfront and the actors, and
// among actors: commands, replies and events as plain Go structs.
package messages

import (
	"errors"
	"fmt"
)

// ErrorKind is the small vocabulary that httpfront maps to HTTP status codes
// in one place. Actors never pick status codes themselves.
type ErrorKind int

const (
	KindInternal         ErrorKind = iota // 500
	KindInvalidParameter                  // 400
	KindNotFound                          // 404
	KindConflict                          // 409
	KindNotModified                       // 304
	KindForbidden                         // 403
	KindUnavailable                       // 503
	KindNotImplemented                    // 501
	KindUnauthorized                      // 401
)

// Error is an error with a kind. Its message is what the client sees, in
// Docker's words where clients match on them.
type Error struct {
	Kind ErrorKind
	Msg  string
	Err  error // optional cause, for errors.Is/As
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Err }

func newErr(k ErrorKind, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Kind: k, Msg: err.Error(), Err: errors.Unwrap(err)}
}

func NotFound(format string, args ...any) *Error { return newErr(KindNotFound, format, args...) }
func InvalidParameter(format string, args ...any) *Error {
	return newErr(KindInvalidParameter, format, args...)
}
func Conflict(format string, args ...any) *Error    { return newErr(KindConflict, format, args...) }
func NotModified(format string, args ...any) *Error { return newErr(KindNotModified, format, args...) }
func Forbidden(format string, args ...any) *Error   { return newErr(KindForbidden, format, args...) }
func Unavailable(format string, args ...any) *Error { return newErr(KindUnavailable, format, args...) }
func NotImplemented(format string, args ...any) *Error {
	return newErr(KindNotImplemented, format, args...)
}

// Unauthorized: the registry refused the credentials (dockerd's
// errdefs.Unauthorized, 401).
func Unauthorized(format string, args ...any) *Error {
	return newErr(KindUnauthorized, format, args...)
}

func Internal(format string, args ...any) *Error { return newErr(KindInternal, format, args...) }

// KindOf reports the kind of err: the kind of the first *Error in its chain,
// else KindInternal.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}
