package call

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf8"
)

// Event types (call-protocol.md §3.2).
const (
	EventRequested = "call.requested"
	EventResponded = "call.responded"
	EventCompleted = "call.completed"
	EventAborted   = "call.aborted"
	EventError     = "call.error"
)

// Envelope is one frame's content: {"type", "id", "payload"}.
type Envelope struct {
	Type    string
	ID      string
	Payload json.RawMessage
}

var emptyObject = json.RawMessage(`{}`)

// AppendEnvelope encodes e with keys in wire order; payload must be valid JSON (nil = null).
func AppendEnvelope(b []byte, e Envelope) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"payload":`...)
	if len(e.Payload) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, e.Payload...)
	}
	return append(b, '}')
}

// appendString appends s as a JSON string without HTML escaping of <, > and &.
func appendString(b []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})...)
}

// DecodeEnvelope decodes a frame body strictly: valid UTF-8, one JSON object, "type" and "id"
// strings and "payload" present exactly once each; other keys are ignored.
func DecodeEnvelope(body []byte) (Envelope, error) {
	if !utf8.Valid(body) {
		return Envelope{}, fmt.Errorf("%w: invalid UTF-8", ErrMalformedFrame)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return Envelope{}, fmt.Errorf("%w: not a JSON object", ErrMalformedFrame)
	}
	var e Envelope
	var haveType, haveID, havePayload bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return Envelope{}, fmt.Errorf("%w: %v", ErrMalformedFrame, err)
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return Envelope{}, fmt.Errorf("%w: %v", ErrMalformedFrame, err)
		}
		switch key {
		case "type", "id":
			seen := &haveType
			dst := &e.Type
			if key == "id" {
				seen, dst = &haveID, &e.ID
			}
			if *seen {
				return Envelope{}, fmt.Errorf("%w: duplicate %q", ErrMalformedFrame, key)
			}
			*seen = true
			if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, dst) != nil {
				return Envelope{}, fmt.Errorf("%w: %q is not a string", ErrMalformedFrame, key)
			}
		case "payload":
			if havePayload {
				return Envelope{}, fmt.Errorf("%w: duplicate \"payload\"", ErrMalformedFrame)
			}
			havePayload = true
			e.Payload = raw
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return Envelope{}, fmt.Errorf("%w: %v", ErrMalformedFrame, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Envelope{}, fmt.Errorf("%w: data after the envelope", ErrMalformedFrame)
	}
	if !haveType || !haveID || !havePayload {
		return Envelope{}, fmt.Errorf("%w: missing type, id or payload", ErrMalformedFrame)
	}
	return e, nil
}
