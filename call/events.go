package call

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/alkdev/alknet/core"
)

// RequestedPayload is the payload of call.requested.
type RequestedPayload struct {
	OperationID  string
	Input        json.RawMessage // nil reads as null
	AuthToken    string          // "" = absent
	HasAuthToken bool
	ForwardedFor *core.Identity
}

// appendRequested encodes the payload with keys in wire order.
func appendRequested(b []byte, p RequestedPayload) []byte {
	b = append(b, `{"operationId":`...)
	b = appendString(b, p.OperationID)
	b = append(b, `,"input":`...)
	b = appendRaw(b, p.Input)
	if p.AuthToken != "" {
		b = append(b, `,"auth_token":`...)
		b = appendString(b, p.AuthToken)
	}
	if p.ForwardedFor != nil {
		b = append(b, `,"forwarded_for":`...)
		b = appendIdentity(b, p.ForwardedFor)
	}
	return append(b, '}')
}

func appendRaw(b []byte, raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return append(b, "null"...)
	}
	return append(b, raw...)
}

func appendIdentity(b []byte, id *core.Identity) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, id.ID)
	b = append(b, `,"scopes":[`...)
	for i, s := range id.Scopes {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	b = append(b, `],"resources":{`...)
	keys := make([]string, 0, len(id.Resources))
	for k := range id.Resources {
		keys = append(keys, k)
	}
	sortStrings(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ":["...)
		for j, a := range id.Resources[k] {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendString(b, a)
		}
		b = append(b, ']')
	}
	return append(b, "}}"...)
}

// decodeRequested reads a call.requested payload leniently, as §3.2 says: a missing or
// non-string operationId reads as "", a missing input as null, a non-string auth_token and
// an undecodable forwarded_for as absent.
func decodeRequested(raw json.RawMessage) RequestedPayload {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return RequestedPayload{}
	}
	var p RequestedPayload
	if v, ok := m["operationId"]; ok && len(v) > 0 && v[0] == '"' {
		_ = json.Unmarshal(v, &p.OperationID)
	}
	p.Input = m["input"]
	if len(p.Input) == 0 {
		p.Input = json.RawMessage("null")
	}
	if v, ok := m["auth_token"]; ok && len(v) > 0 && v[0] == '"' {
		if json.Unmarshal(v, &p.AuthToken) == nil {
			p.HasAuthToken = true
		}
	}
	if v, ok := m["forwarded_for"]; ok {
		p.ForwardedFor = decodeIdentity(v)
	}
	return p
}

func decodeIdentity(raw json.RawMessage) *core.Identity {
	var w struct {
		ID        *string             `json:"id"`
		Scopes    []string            `json:"scopes"`
		Resources map[string][]string `json:"resources"`
	}
	if json.Unmarshal(raw, &w) != nil || w.ID == nil {
		return nil
	}
	return &core.Identity{ID: *w.ID, Scopes: w.Scopes, Resources: w.Resources}
}

// appendResponded encodes {"output": <raw>}.
func appendResponded(b []byte, output json.RawMessage) []byte {
	b = append(b, `{"output":`...)
	b = appendRaw(b, output)
	return append(b, '}')
}

// decodeResponded reads the output of call.responded; a missing output reads as null.
func decodeResponded(raw json.RawMessage) (json.RawMessage, bool) {
	var w struct {
		Output json.RawMessage `json:"output"`
	}
	if json.Unmarshal(raw, &w) != nil {
		return nil, false
	}
	if len(w.Output) == 0 {
		return json.RawMessage("null"), true
	}
	return w.Output, true
}

// appendError encodes a call.error payload with keys in wire order.
func appendError(b []byte, e *CallError) []byte {
	b = append(b, `{"code":`...)
	b = appendString(b, e.Code)
	b = append(b, `,"message":`...)
	b = appendString(b, e.Message)
	if e.Retryable {
		b = append(b, `,"retryable":true`...)
	} else {
		b = append(b, `,"retryable":false`...)
	}
	if len(e.Details) > 0 && !bytes.Equal(bytes.TrimSpace(e.Details), []byte("null")) {
		b = append(b, `,"details":`...)
		b = append(b, e.Details...)
	}
	return append(b, '}')
}

// decodeError reads a call.error payload; code, message and retryable are required.
func decodeError(raw json.RawMessage) (*CallError, bool) {
	var w struct {
		Code      *string         `json:"code"`
		Message   *string         `json:"message"`
		Retryable *bool           `json:"retryable"`
		Details   json.RawMessage `json:"details"`
	}
	if json.Unmarshal(raw, &w) != nil || w.Code == nil || w.Message == nil || w.Retryable == nil {
		return nil, false
	}
	e := &CallError{Code: *w.Code, Message: *w.Message, Retryable: *w.Retryable}
	if len(w.Details) > 0 && string(w.Details) != "null" {
		e.Details = w.Details
	}
	return e, true
}

// stripSlash removes exactly one leading "/" from an operationId.
func stripSlash(op string) string { return strings.TrimPrefix(op, "/") }
