package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"

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
	// Via lists the node-key fingerprints of the forwarders so far, oldest first (nil =
	// absent = none). Decoding keeps at most MaxViaDecoded entries; ViaLen counts them all.
	Via    []string
	ViaLen int
	// TimeoutMS is the caller's remaining budget in whole milliseconds (0 = absent).
	TimeoutMS int64
}

// Limits of the optional call.requested keys (docs/protocol.md §3.2).
const (
	MaxViaEntryBytes = 128
	MaxViaDecoded    = 65 // one more than the largest MaxForwardHops, so the hop count is known
	MaxTimeoutMS     = 1<<31 - 1
)

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
	if len(p.Via) > 0 {
		b = append(b, `,"via":[`...)
		for i, v := range p.Via {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonscan.AppendString(b, v)
		}
		b = append(b, ']')
	}
	if p.TimeoutMS > 0 {
		b = append(b, `,"timeout_ms":`...)
		b = strconv.AppendInt(b, min(p.TimeoutMS, MaxTimeoutMS), 10)
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
		case "via":
			p.Via, p.ViaLen = decodeVia(val)
		case "timeout_ms":
			p.TimeoutMS = decodeTimeoutMS(val)
		}
		return nil
	})
	if len(p.Input) == 0 {
		p.Input = json.RawMessage("null")
	}
	return p
}

// decodeVia reads an array of valid UTF-8 strings of at most MaxViaEntryBytes each, keeping the first
// MaxViaDecoded; anything else reads as absent (nil, 0). Memory follows the entries kept.
func decodeVia(raw json.RawMessage) ([]string, int) {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '[' {
		return nil, 0
	}
	var out []string
	n := 0
	ok := true
	err := jsonscan.Elements(raw, func(val []byte) error {
		s, isStr := jsonscan.StringValue(val, nil)
		if !isStr || len(s) > MaxViaEntryBytes || !utf8.ValidString(s) {
			ok = false
			return errStop
		}
		if n < MaxViaDecoded {
			out = append(out, s)
		}
		n++
		return nil
	})
	if err != nil || !ok {
		return nil, 0
	}
	return out, n
}

// decodeTimeoutMS reads an integer literal of digits only, clamped to 1…MaxTimeoutMS; any
// other value (0, 1e3, 1000.0, a string, a sign) reads as absent (0).
func decodeTimeoutMS(raw json.RawMessage) int64 {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0
	}
	var v int64
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0
		}
		if v < MaxTimeoutMS {
			v = v*10 + int64(c-'0')
		}
	}
	return min(v, MaxTimeoutMS)
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

var errStop = errors.New("stop")
