package jsonscan

import (
	"encoding/json"
	"testing"
)

// FuzzScanner checks the hand-written scanner against encoding/json: a document is accepted
// as an object exactly when json.Valid accepts it and it is an object.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,2,{"b":null}],"c":"\u00e9\n"}`, `{"a":1e5,"b":-0.5E-3}`, `{"a":01}`, `{"a":"\x01"}`, `[1]`, `{"a":1}x`, `{"a":tru}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := Members(b, func([]byte, []byte) error { return nil })
		i := SkipWS(b, 0)
		want := json.Valid(b) && i < len(b) && b[i] == '{'
		if (err == nil) != want {
			t.Fatalf("scanner says %v, encoding/json says valid object = %v, for %q", err, want, b)
		}
	})
}
