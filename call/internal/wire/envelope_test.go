package wire

import (
	"encoding/json"
	"testing"

	"github.com/alkdev/alknet/core"
)

// The direct builder writes exactly what AppendEnvelope writes for the same event.
func TestRespondedEnvelopeMatches(t *testing.T) {
	for _, out := range []string{`{"text":"a<b>&c"}`, `null`, ``, `[1,2]`} {
		e := Responded("id-\"1\"", []byte(out))
		want := AppendEnvelope(nil, Envelope{Type: EventResponded, ID: "id-\"1\"", Payload: appendResponded(nil, []byte(out))})
		if string(e.frame[PrefixLen:]) != string(want) {
			t.Fatalf("%q:\n got %s\nwant %s", out, e.frame, want)
		}
	}
}

func TestRequestedFrameMatches(t *testing.T) {
	id := &core.Identity{ID: "ed25519:ab", Scopes: []string{"x"}}
	for _, p := range []RequestedPayload{
		{OperationID: "/demo/echo", Input: json.RawMessage(`{"text":"hi"}`)},
		{OperationID: "/a\"b", Input: nil, AuthToken: "alk_t", ForwardedFor: id},
	} {
		got := requestedFrame("r-1", p)
		want := AppendEnvelope(nil, Envelope{Type: EventRequested, ID: "r-1", Payload: AppendRequested(nil, p)})
		if string(got[PrefixLen:]) != string(want) {
			t.Fatalf("got %s\nwant %s", got[PrefixLen:], want)
		}
	}
}

// appendResponded is the reference encoding of a call.responded payload.
func appendResponded(b []byte, output json.RawMessage) []byte {
	if b == nil {
		b = make([]byte, 0, len(output)+12)
	}
	b = append(b, `{"output":`...)
	b = appendRaw(b, output)
	return append(b, '}')
}
