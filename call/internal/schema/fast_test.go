package schema

import (
	"encoding/json"
	"fmt"
	"testing"
)

// fastSchemas are schemas inside (and a few outside) the fast subset.
var fastSchemas = []string{
	`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"],"additionalProperties":false}`,
	`{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"integer"}},"required":["a","b"]}`,
	`{"type":["string","null"]}`,
	`{"type":"array","items":{"type":"object","properties":{"x":{"type":"boolean"}},"additionalProperties":{"type":"integer"}}}`,
	`{"required":["x"],"description":"no type","properties":{"y":true,"z":false}}`,
	`{"type":"integer"}`,
	`{"type":"object","properties":{"n":{"type":"string","minLength":2}}}`, // outside the subset
	`{"$schema":"http://json-schema.org/draft-07/schema#","type":"string","format":"email"}`,
	`false`,
	`{"properties":{"\ufffd":false}}`,
}

func TestFastSchemaCompiles(t *testing.T) {
	for i, src := range fastSchemas {
		cs, err := Compile(json.RawMessage(src))
		if err != nil {
			t.Fatalf("schema %d: %v", i, err)
		}
		wantFast := i < 6 || i >= 8
		if (cs.fast != nil) != wantFast {
			t.Errorf("schema %s: fast form %v, want %v", src, cs.fast != nil, wantFast)
		}
	}
}

// TestFastSchemaAgrees checks each verdict against the full validator, and that the fast path
// does accept the plain valid cases (else it would silently be dead code).
func TestFastSchemaAgrees(t *testing.T) {
	cases := []struct {
		schema   int
		instance string
		valid    bool
		fast     bool // the fast path must accept it on its own
	}{
		{0, `{"text":"hi"}`, true, true},
		{0, ` { "text" : "h\u00e9" } `, true, true},
		{0, `{"text":1}`, false, false},
		{0, `{}`, false, false},
		{0, `{"text":"a","x":1}`, false, false},
		{0, `{"text":"a","text":"b"}`, true, false}, // repeated key: the full validator decides
		{0, `{"te\u0078t":"a"}`, true, false},       // escaped key
		{0, `[]`, false, false},
		{0, `{"text":"a"`, false, false},
		{1, `{"a":1.5,"b":2,"c":[1,{"d":null}]}`, true, true},
		{1, `{"a":1,"b":2.0}`, true, false}, // 2.0 is an integer; left to the full validator
		{1, `{"a":1,"b":2.5}`, false, false},
		{1, `{"a":"1","b":2}`, false, false},
		{2, `null`, true, true},
		{2, `"s"`, true, true},
		{2, `1`, false, false},
		{3, `[{"x":true,"y":3},{}]`, true, true},
		{3, `[{"x":true,"y":3.5}]`, false, false},
		{3, `[{"x":1}]`, false, false},
		{3, `{}`, false, false},
		{4, `{"x":1,"y":[]}`, true, true},
		{4, `{"x":1,"z":0}`, false, false},
		{4, `{"y":1}`, false, false},
		{4, `7`, true, true},
		{5, `-12`, true, true},
		{5, `1e2`, true, false},
		{5, `"1"`, false, false},
		{8, `null`, false, false},
		{9, `{"a":1}`, true, true},
		{9, "{\"\xff\":1}", false, false}, // the key decodes to U+FFFD, which is forbidden
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d/%s", tc.schema, tc.instance), func(t *testing.T) {
			cs, err := Compile(json.RawMessage(fastSchemas[tc.schema]))
			if err != nil {
				t.Fatal(err)
			}
			full := (&Schema{s: cs.s}).Validate(json.RawMessage(tc.instance))
			if (full == nil) != tc.valid {
				t.Fatalf("full validator: %v, want valid = %v", full, tc.valid)
			}
			if got := cs.fast != nil && cs.fast.accepts([]byte(tc.instance)); got != tc.fast {
				t.Fatalf("fast path accepts = %v, want %v", got, tc.fast)
			}
			if got := cs.Validate(json.RawMessage(tc.instance)); (got == nil) != tc.valid {
				t.Fatalf("validate: %v, want valid = %v", got, tc.valid)
			}
		})
	}
}

// FuzzFastSchema checks that the fast path never accepts what the full validator rejects.
func FuzzFastSchema(f *testing.F) {
	for i, s := range []string{`{"text":"hi"}`, `{"a":1,"b":2}`, `null`, `[{"x":true,"y":3}]`, `{"x":1}`, `-3`} {
		f.Add(uint8(i), []byte(s))
	}
	compiled := make([]*Schema, len(fastSchemas))
	for i, src := range fastSchemas {
		cs, err := Compile(json.RawMessage(src))
		if err != nil {
			f.Fatal(err)
		}
		compiled[i] = cs
	}
	f.Fuzz(func(t *testing.T, which uint8, instance []byte) {
		cs := compiled[int(which)%len(compiled)]
		if cs.fast == nil || !cs.fast.accepts(instance) {
			return
		}
		if err := (&Schema{s: cs.s}).Validate(instance); err != nil {
			t.Fatalf("fast path accepted %q, full validator: %v", instance, err)
		}
	})
}
