package call

import (
	"encoding/json"
	"testing"
)

// The direct builder writes exactly what AppendEnvelope writes for the same event.
func TestRespondedEnvelopeMatches(t *testing.T) {
	for _, out := range []string{`{"text":"a<b>&c"}`, `null`, ``, `[1,2]`} {
		e := respondedEnvelope("id-\"1\"", []byte(out))
		want := AppendEnvelope(nil, Envelope{Type: EventResponded, ID: "id-\"1\"", Payload: appendResponded(nil, []byte(out))})
		if string(e.frame) != string(want) {
			t.Fatalf("%q:\n got %s\nwant %s", out, e.frame, want)
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
