package call

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/alkdev/alknet/call/internal/jsonscan"
)

type fuzzMarshaler []byte

func (f fuzzMarshaler) MarshalJSON() ([]byte, error) { return f, nil }

type fuzzOut struct {
	S   string          `json:"s"`
	Raw json.RawMessage `json:"raw,omitempty"`
	M   fuzzMarshaler   `json:"m,omitempty"`
	Any any             `json:"any"`
}

// FuzzTypedOutputs: whatever a typed handler returns — strings with invalid UTF-8 or control
// bytes, arbitrary json.RawMessage fields and Marshaler output — the trusted path either fails
// or yields valid JSON, for calls and for stream items (performance issue, item 3).
func FuzzTypedOutputs(f *testing.F) {
	f.Add("hello", []byte(`{"a":1}`), []byte(`[1,2]`), []byte(`"x"`))
	f.Add("\xff\x00\u2028<>&", []byte(`{"a":`), []byte(`nul`), []byte(`{}`))
	f.Add("", []byte(``), []byte(``), []byte(`1e999`))
	f.Fuzz(func(t *testing.T, s string, raw, m, input []byte) {
		out := fuzzOut{S: s, Raw: raw, M: fuzzMarshaler(m)}
		reg := Typed(OperationSpec{Name: "f/q", Type: OpQuery}, func(_ context.Context, _ *OperationContext, in any) (fuzzOut, error) {
			o := out
			o.Any = in
			return o, nil
		})
		b, err := reg.typed.call(context.Background(), nil, input)
		if err == nil && !jsonscan.Valid(b) {
			t.Fatalf("the trusted path produced invalid JSON: %q", b)
		}
		st := TypedStream(OperationSpec{Name: "f/s", Type: OpSubscription}, func(_ context.Context, _ *OperationContext, _ any, emit func(fuzzOut) error) error {
			return emit(out)
		})
		_ = st.typed.stream(context.Background(), nil, input, func(item json.RawMessage) error {
			if !jsonscan.Valid(item) {
				t.Fatalf("the trusted stream produced invalid JSON: %q", item)
			}
			return nil
		})
	})
}
