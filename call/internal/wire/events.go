package wire

import (
	"bytes"
	"encoding/json"

	"github.com/alkdev/alknet/core"

	"github.com/alkdev/alknet/call/internal/jsonscan"

	"slices"
)

// RequestedPayload is the payload of call.requested.
type RequestedPayload struct {
	OperationID  string
	Input        json.RawMessage // nil reads as null
	AuthToken    string          // "" = absent
	HasAuthToken bool
	ForwardedFor *core.Identity
}

// AppendRequested encodes the payload with keys in wire order.
func AppendRequested(b []byte, p RequestedPayload) []byte {
	if b == nil {
		b = make([]byte, 0, len(p.OperationID)+len(p.Input)+len(p.AuthToken)+48)
	}
	b = append(b, `{"operationId":`...)
	b = jsonscan.AppendString(b, p.OperationID)
	b = append(b, `,"input":`...)
	b = appendRaw(b, p.Input)
	if p.AuthToken != "" {
		b = append(b, `,"auth_token":`...)
		b = jsonscan.AppendString(b, p.AuthToken)
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
	b = jsonscan.AppendString(b, id.ID)
	b = append(b, `,"scopes":[`...)
	for i, s := range id.Scopes {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonscan.AppendString(b, s)
	}
	b = append(b, `],"resources":{`...)
	keys := make([]string, 0, len(id.Resources))
	for k := range id.Resources {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonscan.AppendString(b, k)
		b = append(b, ":["...)
		for j, a := range id.Resources[k] {
			if j > 0 {
				b = append(b, ',')
			}
			b = jsonscan.AppendString(b, a)
		}
		b = append(b, ']')
	}
	return append(b, "}}"...)
}

// DecodeRequested reads a call.requested payload leniently, as §3.2 says: a missing or
// non-string operationId reads as "", a missing input as null, a non-string auth_token and
// an undecodable forwarded_for as absent.
func DecodeRequested(raw json.RawMessage) RequestedPayload {
	var p RequestedPayload
	_ = jsonscan.Members(raw, func(key []byte, val []byte) error {
		switch string(key) {
		case "operationId":
			p.OperationID, _ = jsonscan.StringValue(val, nil)
		case "input":
			p.Input = val
		case "auth_token":
			p.AuthToken, p.HasAuthToken = jsonscan.StringValue(val, nil)
		case "forwarded_for":
			p.ForwardedFor = decodeIdentity(val)
		}
		return nil
	})
	if len(p.Input) == 0 {
		p.Input = json.RawMessage("null")
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

// DecodeResponded reads the output of call.responded; a missing output reads as null.
func DecodeResponded(raw json.RawMessage) (json.RawMessage, bool) {
	var out json.RawMessage
	if jsonscan.Members(raw, func(key []byte, val []byte) error {
		if string(key) == "output" {
			out = val
		}
		return nil
	}) != nil {
		return nil, false
	}
	if len(out) == 0 {
		return json.RawMessage("null"), true
	}
	return out, true
}

// ErrorPayload is the payload of call.error as it travels: the call package turns it into
// its error type and back (docs/protocol.md).
type ErrorPayload struct {
	Code      string
	Message   string
	Details   json.RawMessage // nil: absent (a JSON null reads as absent)
	Retryable bool
}

// AppendError encodes a call.error payload with keys in wire order.
func AppendError(b []byte, e ErrorPayload) []byte {
	b = append(b, `{"code":`...)
	b = jsonscan.AppendString(b, e.Code)
	b = append(b, `,"message":`...)
	b = jsonscan.AppendString(b, e.Message)
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

// DecodeError reads a call.error payload; code, message and retryable are required.
func DecodeError(raw json.RawMessage) (ErrorPayload, bool) {
	var e ErrorPayload
	var haveCode, haveMsg, haveRetry, bad bool
	if jsonscan.Members(raw, func(key []byte, val []byte) error {
		switch string(key) {
		case "code":
			e.Code, haveCode = jsonscan.StringValue(val, nil)
			bad = bad || !haveCode
		case "message":
			e.Message, haveMsg = jsonscan.StringValue(val, nil)
			bad = bad || !haveMsg
		case "retryable":
			switch string(val) {
			case "true":
				e.Retryable, haveRetry = true, true
			case "false":
				e.Retryable, haveRetry = false, true
			default:
				bad = true
			}
		case "details":
			e.Details = nil
			if string(val) != "null" {
				e.Details = val
			}
		}
		return nil
	}) != nil || bad || !haveCode || !haveMsg || !haveRetry {
		return ErrorPayload{}, false
	}
	return e, true
}
