package conn

import (
	"errors"
	"fmt"
	"slices"
)

// Error categories; adapters map transport errors so that errors.Is matches these while the
// original cause stays in the chain.
var (
	ErrConnectionClosed   = errors.New("conn: connection closed")
	ErrStreamClosed       = errors.New("conn: stream closed")
	ErrTimeout            = errors.New("conn: timeout")
	ErrIdentityAlreadySet = errors.New("conn: identity already set")
)

// CloseError is an application close of the connection by either side.
type CloseError struct {
	Code   uint64
	Reason string
	Remote bool
}

func (e *CloseError) Error() string {
	side := "local"
	if e.Remote {
		side = "remote"
	}
	return fmt.Sprintf("conn: connection closed by %s with code %d (%q)", side, e.Code, e.Reason)
}

// Is makes a CloseError match ErrConnectionClosed.
func (e *CloseError) Is(target error) bool { return target == ErrConnectionClosed }

// StreamCancelError is a stream aborted by either side.
type StreamCancelError struct {
	Code   uint64
	Remote bool
}

func (e *StreamCancelError) Error() string {
	side := "local"
	if e.Remote {
		side = "remote"
	}
	return fmt.Sprintf("conn: stream canceled by %s with code %d", side, e.Code)
}

// Is makes a StreamCancelError match ErrStreamClosed.
func (e *StreamCancelError) Is(target error) bool { return target == ErrStreamClosed }

// mappedError matches the given categories and keeps the transport's error as its cause.
type mappedError struct {
	kinds []error
	typed error // *CloseError or *StreamCancelError, or nil
	cause error
}

func mapped(cause, typed error, kinds ...error) error {
	return &mappedError{kinds: kinds, typed: typed, cause: cause}
}

func (e *mappedError) Error() string {
	if e.typed != nil {
		return e.typed.Error()
	}
	if e.cause == nil {
		return e.kinds[0].Error()
	}
	return e.kinds[0].Error() + ": " + e.cause.Error()
}

func (e *mappedError) Is(target error) bool { return slices.Contains(e.kinds, target) }

func (e *mappedError) Unwrap() []error {
	out := make([]error, 0, 2)
	if e.typed != nil {
		out = append(out, e.typed)
	}
	if e.cause != nil {
		out = append(out, e.cause)
	}
	return out
}
