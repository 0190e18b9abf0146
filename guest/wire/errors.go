package wire

import (
	"errors"
	"fmt"
)

// Kind classifies an agent error so the host can map it (exit code 127 for a
// missing binary, 126 for a non-executable one, 404 for an unknown process)
// without parsing messages.
type Kind string

const (
	KindInternal   Kind = ""
	KindNotFound   Kind = "notfound"   // executable, file or process does not exist
	KindPermission Kind = "permission" // not executable, or not allowed
	KindInvalid    Kind = "invalid"    // bad request: unknown user, empty args
	KindConflict   Kind = "conflict"   // duplicate process ID, container not running
)

// Sentinels for errors.Is on errors that came over the wire.
var (
	ErrNotFound   = errors.New("not found")
	ErrPermission = errors.New("permission denied")
	ErrInvalid    = errors.New("invalid argument")
	ErrConflict   = errors.New("conflict")
)

// Error is an error with a kind. Its message is passed verbatim, since it
// carries the words Docker clients match on.
type Error struct {
	Kind Kind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Is lets errors.Is(err, ErrNotFound) and friends match by kind.
func (e *Error) Is(target error) bool {
	return target != nil && target == sentinel(e.Kind)
}

// Errorf makes an Error of the given kind.
func Errorf(kind Kind, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// KindOf is the kind of the first *Error in err's chain, else KindInternal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

func sentinel(k Kind) error {
	switch k {
	case KindNotFound:
		return ErrNotFound
	case KindPermission:
		return ErrPermission
	case KindInvalid:
		return ErrInvalid
	case KindConflict:
		return ErrConflict
	}
	return nil
}
