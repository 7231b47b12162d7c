package call

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/alkdev/alknet/call/internal/wire"
)

// Protocol error codes (docs/protocol.md §7.1).
const (
	CodeNotFound             = "NOT_FOUND"
	CodeForbidden            = "FORBIDDEN"
	CodeInvalidInput         = "INVALID_INPUT"
	CodeInvalidOperationType = "INVALID_OPERATION_TYPE"
	CodeInternal             = "INTERNAL"
	CodeTimeout              = "TIMEOUT"
)

// IsProtocolCode reports whether code is one of the six protocol codes.
func IsProtocolCode(code string) bool {
	switch code {
	case CodeNotFound, CodeForbidden, CodeInvalidInput, CodeInvalidOperationType, CodeInternal, CodeTimeout:
		return true
	}
	return false
}

// Messages fixed by the spec.
const (
	msgInternal          = "internal error"
	msgConnectionClosed  = "connection closed"
	msgRequestCancelled  = "request cancelled"
	msgStreamClosed      = "stream closed before response"
	msgDeadlineExceeded  = "deadline exceeded"
	msgRequestTimedOut   = "request timed out"
	msgDuplicateID       = "duplicate request id"
	msgTooManyInFlight   = "too many in-flight requests"
	msgTooManyPending    = "too many pending requests"
	msgResponseTooLarge  = "response exceeds maximum frame size"
	msgConsumerTooSlow   = "subscription consumer too slow"
	msgComposeSub        = "OperationEnv.Invoke called on a subscription op; composition is request/response-only"
	msgDepthExceeded     = "composition depth exceeded"
	msgOutputMismatch    = "output does not match schema"
	msgOwnershipFailed   = "ownership check failed"
	msgMissingName       = "missing required field: name"
	msgOperationNotFound = "operation not found: "
	msgAuthRequired      = "authentication required"
	msgTokenRejected     = "unknown or revoked API key"
)

// Error is every error the call layer reports, local or from the peer: a code (one of the
// protocol codes above, or a domain code an operation declares), a message, optional JSON
// details and whether a retry may succeed. errors.Is matches it against the code sentinels
// (ErrNotFound, …) and ErrAborted; errors.As finds it in a wrapped chain. Unwrap returns the
// local cause, which never travels.
type Error struct {
	code         string
	message      string
	retryable    bool
	details      json.RawMessage
	originalCode string // an unknown code from the peer, read as INTERNAL (§7.4)
	cause        error
	aborted      bool // the request was cancelled or aborted
	remote       bool // decoded from the peer's call.error
	sentinel     bool // a code sentinel: matches every Error with its code
}

// NewError returns an Error with a code and message; it is not retryable.
func NewError(code, message string) *Error { return &Error{code: code, message: message} }

// Errorf returns an Error with a code and a formatted message.
func Errorf(code, format string, a ...any) *Error {
	return &Error{code: code, message: fmt.Sprintf(format, a...)}
}

// Code sentinels: errors.Is(err, ErrNotFound) reports an Error with code NOT_FOUND, local or
// from the peer.
var (
	ErrNotFound             = codeSentinel(CodeNotFound)
	ErrForbidden            = codeSentinel(CodeForbidden)
	ErrInvalidInput         = codeSentinel(CodeInvalidInput)
	ErrInvalidOperationType = codeSentinel(CodeInvalidOperationType)
	ErrInternal             = codeSentinel(CodeInternal)
	ErrTimeout              = codeSentinel(CodeTimeout)
)

func codeSentinel(code string) *Error {
	return &Error{code: code, message: "any " + code, sentinel: true}
}

// ErrAborted matches every Error that reports a cancelled or aborted request.
var ErrAborted = errors.New("call: request aborted")

// Code returns the error code.
func (e *Error) Code() string { return e.code }

// Message returns the human-readable message. Messages the protocol fixes (docs/protocol.md)
// are exact; others are for people, not for matching.
func (e *Error) Message() string { return e.message }

// Details returns the JSON details, or nil.
func (e *Error) Details() json.RawMessage { return e.details }

// Retryable reports whether the same request may succeed if sent again.
func (e *Error) Retryable() bool { return e.retryable }

// OriginalCode returns the code the peer sent when it was not one the caller knows and was
// read as INTERNAL (§7.4); "" otherwise.
func (e *Error) OriginalCode() string { return e.originalCode }

// IsRemote reports whether the error was decoded from the peer's call.error rather than
// raised on this side (a local timeout, a closed connection, a refused request).
func (e *Error) IsRemote() bool { return e.remote }

// Error renders "CODE: message", as the CLI prints it.
func (e *Error) Error() string { return e.code + ": " + e.message }

// Unwrap returns the local cause (never serialised).
func (e *Error) Unwrap() error { return e.cause }

// Is matches ErrAborted for cancelled or aborted requests, and a code sentinel for its code.
func (e *Error) Is(target error) bool {
	if target == ErrAborted {
		return e.aborted
	}
	t, ok := target.(*Error)
	return ok && t.sentinel && t.code == e.code
}

// WithDetails returns a copy of e with details attached (JSON).
func (e *Error) WithDetails(details json.RawMessage) *Error {
	c := *e
	c.details = details
	return &c
}

// WithRetryable returns a copy of e that says whether a retry may succeed.
func (e *Error) WithRetryable(retryable bool) *Error {
	c := *e
	c.retryable = retryable
	return &c
}

// MarshalJSON encodes e as a call.error payload: code, message, retryable and details.
func (e *Error) MarshalJSON() ([]byte, error) { return appendCallError(nil, e), nil }

func errNotFound(name string) *Error {
	return &Error{code: CodeNotFound, message: msgOperationNotFound + name}
}

func errInternal(msg string, cause error) *Error {
	return &Error{code: CodeInternal, message: msg, cause: cause}
}

func errCancelled(cause error) *Error {
	if cause == nil {
		cause = context.Canceled
	}
	return &Error{code: CodeInternal, message: msgRequestCancelled, cause: cause, aborted: true}
}

func errConnectionClosed(cause error) *Error {
	return &Error{code: CodeInternal, message: msgConnectionClosed, cause: cause}
}

func errDeadline() *Error {
	return &Error{code: CodeTimeout, message: msgDeadlineExceeded, retryable: true, cause: context.DeadlineExceeded}
}

func errTimedOut() *Error {
	return &Error{code: CodeTimeout, message: msgRequestTimedOut, retryable: true, cause: context.DeadlineExceeded}
}

// ctxError is the error of a call whose ctx ended: TIMEOUT for a deadline, else cancelled.
func ctxError(ctx context.Context) *Error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errTimedOut()
	}
	return errCancelled(ctx.Err())
}

// openStreamError is the error of a call whose stream could not be opened: its ctx's, if that
// ended, else INTERNAL "failed to open stream".
func openStreamError(ctx context.Context, err error) *Error {
	if ctx.Err() != nil {
		return ctxError(ctx)
	}
	return errInternal(fmt.Sprintf("failed to open stream: %v", err), err)
}

func errRetryableInternal(msg string) *Error {
	return &Error{code: CodeInternal, message: msg, retryable: true}
}

// asCallError maps any error to an *Error without changing those that are.
func asCallError(err error) *Error {
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	return errInternal(msgInternal, err)
}

// appendCallError encodes e as a call.error payload.
func appendCallError(b []byte, e *Error) []byte {
	return wire.AppendError(b, wire.ErrorPayload{Code: e.code, Message: e.message, Details: e.details, Retryable: e.retryable})
}

// decodeCallError reads a call.error payload from the peer.
func decodeCallError(raw []byte) (*Error, bool) {
	p, ok := wire.DecodeError(raw)
	if !ok {
		return nil, false
	}
	return &Error{code: p.Code, message: p.Message, details: p.Details, retryable: p.Retryable, remote: true}, true
}
