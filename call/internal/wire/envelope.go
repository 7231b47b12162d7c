// Package wire is the alknet/call wire format (docs/protocol.md): length-prefixed frames read
// and written on one stream (FrameReader, FrameWriter, the node-wide FrameBudget for partial
// frames, the IdleTimer that times a stream's inactivity), the envelope and the payloads of the
// five events. The call package builds the protocol on it; nothing here knows about
// operations, access control or connections.
package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/alkdev/alknet/call/internal/jsonscan"
)

// Event types (docs/protocol.md §3.2).
const (
	EventRequested = "call.requested"
	EventResponded = "call.responded"
	EventCompleted = "call.completed"
	EventAborted   = "call.aborted"
	EventError     = "call.error"
)

// eventTypes are interned so decoding an envelope's type allocates nothing.
var eventTypes = []string{EventRequested, EventResponded, EventCompleted, EventAborted, EventError}

// Envelope is one frame's content: {"type", "id", "payload"}.
type Envelope struct {
	Type    string
	ID      string
	Payload json.RawMessage

	// output is the payload's "output" member, found while the envelope was decoded
	// (outputKnown; nil: no such member), so call.responded is not scanned twice.
	output      json.RawMessage
	outputKnown bool

	// frame, when built directly (hot paths): framePrefixLen bytes reserved for the length
	// prefix, then the encoded envelope, so an idle stream takes it in one Write, uncopied.
	frame []byte
}

// newFrame returns an empty frame buffer with room for the prefix and size more bytes.
func newFrame(size int) []byte { return make([]byte, PrefixLen, PrefixLen+size) }

// EncodedFrame returns e's frame (prefix room included), encoding it if it was not built
// directly.
func (e Envelope) EncodedFrame() []byte {
	if e.frame != nil {
		return e.frame
	}
	return AppendEnvelope(newFrame(len(e.Type)+len(e.ID)+len(e.Payload)+40), e)
}

// Requested returns the call.requested envelope for id and p, encoded once into its frame.
func Requested(id string, p RequestedPayload) Envelope {
	return Envelope{Type: EventRequested, ID: id, frame: requestedFrame(id, p)}
}

// requestedFrame builds a call.requested frame in one buffer, payload included.
func requestedFrame(id string, p RequestedPayload) []byte {
	b := newFrame(len(id) + len(p.OperationID) + len(p.Input) + len(p.AuthToken) + 96)
	b = append(b, `{"type":"call.requested","id":`...)
	b = jsonscan.AppendString(b, id)
	b = append(b, `,"payload":`...)
	b = AppendRequested(b, p)
	return append(b, '}')
}

// RespondedOutput returns the output of a call.responded envelope (null when absent).
func (e Envelope) RespondedOutput() (json.RawMessage, bool) {
	if !e.outputKnown {
		return DecodeResponded(e.Payload)
	}
	if len(e.output) == 0 {
		return json.RawMessage("null"), true
	}
	return e.output, true
}

// RespondedHead is what precedes the output in a call.responded envelope for id; the
// envelope ends with respondedTail.
func RespondedHead(b []byte, id string) []byte {
	b = append(b, `{"type":"call.responded","id":`...)
	b = jsonscan.AppendString(b, id)
	return append(b, `,"payload":{"output":`...)
}

const RespondedTail = "}}"

// Responded builds a call.responded envelope in one buffer, without encoding the
// payload separately first.
func Responded(id string, output json.RawMessage) Envelope {
	if len(output) == 0 {
		output = json.RawMessage("null")
	}
	b := RespondedHead(newFrame(len(id)+len(output)+64), id)
	b = append(b, output...)
	b = append(b, RespondedTail...)
	return Envelope{Type: EventResponded, ID: id, frame: b}
}

var EmptyObject = json.RawMessage(`{}`)

// AppendEnvelope encodes e with keys in wire order; payload must be valid JSON (nil = null).
func AppendEnvelope(b []byte, e Envelope) []byte {
	if b == nil {
		b = make([]byte, 0, len(e.Type)+len(e.ID)+len(e.Payload)+40)
	}
	b = append(b, `{"type":`...)
	b = jsonscan.AppendString(b, e.Type)
	b = append(b, `,"id":`...)
	b = jsonscan.AppendString(b, e.ID)
	b = append(b, `,"payload":`...)
	if len(e.Payload) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, e.Payload...)
	}
	return append(b, '}')
}

// DecodeEnvelope decodes a frame body strictly: valid UTF-8, one JSON object, "type" and "id"
// strings and "payload" present exactly once each; other keys are ignored.
func DecodeEnvelope(body []byte) (Envelope, error) {
	if !utf8.Valid(body) {
		return Envelope{}, fmt.Errorf("%w: invalid UTF-8", ErrMalformedFrame)
	}
	var e Envelope
	var haveType, haveID, havePayload bool
	// The payload's members come in the same pass; an escaped key there could spell "output",
	// so it leaves the output to decodeResponded.
	e.outputKnown = true
	payloadMember := func(key []byte, esc bool, val []byte) error {
		switch {
		case esc:
			e.outputKnown = false
		case string(key) == `"output"`:
			e.output = val
		}
		return nil
	}
	err := jsonscan.MembersNested(body, func(key []byte, keyEscaped bool, val []byte) error {
		switch string(key) {
		case "type", "id":
			seen, dst := &haveType, &e.Type
			if string(key) == "id" {
				seen, dst = &haveID, &e.ID
			}
			if *seen {
				return fmt.Errorf("%w: duplicate %q", ErrMalformedFrame, key)
			}
			*seen = true
			s, ok := jsonscan.StringValue(val, eventTypes)
			if !ok {
				return fmt.Errorf("%w: %q is not a string", ErrMalformedFrame, key)
			}
			*dst = s
		case "payload":
			if havePayload {
				return fmt.Errorf("%w: duplicate \"payload\"", ErrMalformedFrame)
			}
			havePayload = true
			e.Payload = val
			if keyEscaped || len(val) == 0 || val[0] != '{' {
				e.outputKnown = false // its members were not reported: decodeResponded reads it
			}
		}
		return nil
	}, `"payload"`, payloadMember)
	if err != nil {
		if errors.Is(err, ErrMalformedFrame) {
			return Envelope{}, err
		}
		return Envelope{}, fmt.Errorf("%w: %v", ErrMalformedFrame, err)
	}
	if !haveType || !haveID || !havePayload {
		return Envelope{}, fmt.Errorf("%w: missing type, id or payload", ErrMalformedFrame)
	}
	return e, nil
}
