//go:build cgo && !noiroh

package iroh

import (
	"fmt"
	"os"
	"slices"

	"github.com/alkdev/alknet/core/conn"
)

// mappedError matches its categories with errors.Is and keeps the typed error and the native
// message in its chain (spec iroh.md §6.6, core.md §4.4).
type mappedError struct {
	kinds []error
	typed error
	msg   string
}

func (e *mappedError) Error() string {
	if e.typed != nil {
		return e.typed.Error()
	}
	if e.msg == "" {
		return e.kinds[0].Error()
	}
	return e.kinds[0].Error() + ": " + e.msg
}

func (e *mappedError) Is(target error) bool { return slices.Contains(e.kinds, target) }

func (e *mappedError) Unwrap() error { return e.typed }

var errDeadline = &mappedError{kinds: []error{conn.ErrTimeout, os.ErrDeadlineExceeded}, msg: "i/o deadline exceeded"}

// connError maps a completion that ended because the connection did.
func connError(c completion, msg string) error {
	switch c.status {
	case stClosed:
		return &mappedError{kinds: []error{conn.ErrConnectionClosed}, typed: &conn.CloseError{Code: c.value, Reason: msg, Remote: c.flags&flagRemote != 0}}
	case stTimeout:
		return &mappedError{kinds: []error{conn.ErrTimeout, conn.ErrConnectionClosed}, msg: msg}
	default:
		return &mappedError{kinds: []error{conn.ErrConnectionClosed}, msg: statusText(c.status, msg)}
	}
}

func streamCancel(code uint64, remote bool) error {
	return &mappedError{kinds: []error{conn.ErrStreamClosed}, typed: &conn.StreamCancelError{Code: code, Remote: remote}}
}

func statusText(st int32, msg string) string {
	if msg != "" {
		return msg
	}
	return fmt.Sprintf("native status %d", st)
}
