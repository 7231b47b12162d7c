package call

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/alkdev/alknet/call/internal/wire"
)

// Protocol error codes (call-protocol.md §7.1).
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

// ErrAborted matches every CallError that reports a cancelled or aborted request.
var ErrAborted = errors.New("call: request aborted")

// CallError is every error the call layer reports, local or from the peer.
type CallError struct {
	Code      string          `json:"code"`
	Message   string          `json:"message"`
	Retryable bool            `json:"retryable"`
	Details   json.RawMessage `json:"details,omitempty"`
	// OriginalCode is set by callers when an unknown code was read as INTERNAL (§7.4).
	OriginalCode string `json:"-"`
	cause        error
	aborted      bool
}

func (e *CallError) Error() string { return e.Code + ": " + e.Message }

// Unwrap returns the local cause (never serialised).
func (e *CallError) Unwrap() error { return e.cause }

// Is makes cancelled requests match ErrAborted.
func (e *CallError) Is(target error) bool { return target == ErrAborted && e.aborted }

// NewError returns a CallError with a code and message; retryable is false.
func NewError(code, format string, a ...any) *CallError {
	return &CallError{Code: code, Message: fmt.Sprintf(format, a...)}
}

// WithDetails returns e with details attached (JSON).
func (e *CallError) WithDetails(details json.RawMessage) *CallError {
	c := *e
	c.Details = details
	return &c
}

func errNotFound(name string) *CallError {
	return &CallError{Code: CodeNotFound, Message: msgOperationNotFound + name}
}

func errInternal(msg string, cause error) *CallError {
	return &CallError{Code: CodeInternal, Message: msg, cause: cause}
}

func errCancelled(cause error) *CallError {
	if cause == nil {
		cause = context.Canceled
	}
	return &CallError{Code: CodeInternal, Message: msgRequestCancelled, cause: cause, aborted: true}
}

func errConnectionClosed(cause error) *CallError {
	return &CallError{Code: CodeInternal, Message: msgConnectionClosed, cause: cause}
}

func errDeadline() *CallError {
	return &CallError{Code: CodeTimeout, Message: msgDeadlineExceeded, Retryable: true, cause: context.DeadlineExceeded}
}

func errTimedOut() *CallError {
	return &CallError{Code: CodeTimeout, Message: msgRequestTimedOut, Retryable: true, cause: context.DeadlineExceeded}
}

func errRetryableInternal(msg string) *CallError {
	return &CallError{Code: CodeInternal, Message: msg, Retryable: true}
}

// asCallError maps any error to a CallError without changing CallErrors.
func asCallError(err error) *CallError {
	var ce *CallError
	if errors.As(err, &ce) {
		return ce
	}
	return errInternal(msgInternal, err)
}

// appendCallError encodes e as a call.error payload.
func appendCallError(b []byte, e *CallError) []byte {
	return wire.AppendError(b, wire.ErrorPayload{Code: e.Code, Message: e.Message, Details: e.Details, Retryable: e.Retryable})
}

// decodeCallError reads a call.error payload from the peer.
func decodeCallError(raw []byte) (*CallError, bool) {
	p, ok := wire.DecodeError(raw)
	if !ok {
		return nil, false
	}
	return &CallError{Code: p.Code, Message: p.Message, Details: p.Details, Retryable: p.Retryable}, true
}
