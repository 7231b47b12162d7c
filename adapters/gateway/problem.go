package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/alkdev/alknet/call"
)

// problem is an RFC 9457 problem document with the call error's fields (docs/http.md §3.5.4).
type problem struct {
	Type         string          `json:"type"`
	Title        string          `json:"title"`
	Status       int             `json:"status"`
	Detail       string          `json:"detail"`
	Code         string          `json:"code"`
	Message      string          `json:"message"`
	Retryable    bool            `json:"retryable"`
	Details      json.RawMessage `json:"details,omitempty"`
	OriginalCode string          `json:"original_code,omitempty"`
	RequestID    string          `json:"request_id"`
}

// statusOf maps a call error to its HTTP status: the core codes by rule, a code the operation
// declares to its http_status (422 without one).
func statusOf(ce *call.Error, spec call.OperationSpec, caller bool) int {
	switch ce.Code() {
	case call.CodeNotFound:
		return http.StatusNotFound
	case call.CodeForbidden:
		if !caller {
			return http.StatusUnauthorized
		}
		return http.StatusForbidden
	case call.CodeInvalidInput, call.CodeInvalidOperationType:
		return http.StatusBadRequest
	case call.CodeTimeout:
		return http.StatusGatewayTimeout
	case call.CodeInternal:
		if ce.Retryable() {
			return http.StatusServiceUnavailable
		}
		return http.StatusInternalServerError
	}
	for _, d := range spec.ErrorSchemas {
		if d.Code == ce.Code() {
			if d.HTTPStatus != nil && *d.HTTPStatus >= 400 && *d.HTTPStatus <= 599 {
				return *d.HTTPStatus
			}
			return http.StatusUnprocessableEntity
		}
	}
	return http.StatusInternalServerError
}

// asCallError returns err as a call error (INTERNAL for anything else).
func asCallError(err error) *call.Error {
	var ce *call.Error
	if errors.As(err, &ce) {
		return ce
	}
	return call.NewError(call.CodeInternal, "internal error")
}

func newProblem(status int, ce *call.Error, requestID string) problem {
	return problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: ce.Message(),
		Code: ce.Code(), Message: ce.Message(), Retryable: ce.Retryable(), Details: ce.Details(),
		OriginalCode: ce.OriginalCode(), RequestID: requestID}
}

// writeProblem writes a problem+json answer. Retryable 503s and 429s carry Retry-After.
func writeProblem(w http.ResponseWriter, status int, ce *call.Error, requestID string) {
	body, _ := json.Marshal(newProblem(status, ce, requestID))
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	switch status {
	case http.StatusServiceUnavailable:
		if h.Get("Retry-After") == "" {
			h.Set("Retry-After", "1")
		}
	case http.StatusUnauthorized:
		if h.Get("WWW-Authenticate") == "" {
			h.Set("WWW-Authenticate", `Bearer realm="alknet"`)
		}
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// badRequest is a gateway-made 4xx: INVALID_INPUT with message.
func badRequest(w http.ResponseWriter, status int, message, requestID string) {
	writeProblem(w, status, call.NewError(call.CodeInvalidInput, message), requestID)
}

func notFound(w http.ResponseWriter, requestID string) {
	writeProblem(w, http.StatusNotFound, call.NewError(call.CodeNotFound, "not found"), requestID)
}
