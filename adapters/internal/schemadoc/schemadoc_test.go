package schemadoc

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mustDecode(t testing.TB, s string) any {
	t.Helper()
	v, err := Decode(json.RawMessage(s))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func canon(t testing.TB, v any) string {
	t.Helper()
	b, err := Canonical(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCanonical(t *testing.T) {
	v := mustDecode(t, `{"b":1.50,"a":"<&>","c":[18446744073709551617]}`)
	if got, want := canon(t, v), `{"a":"<&>","b":1.50,"c":[18446744073709551617]}`; got != want {
		t.Fatalf("got %s want %s", got, want)
	}
}

// docs/http.md §2.5.3 (checklist 13): older drafts are published as 2020-12.
func TestTranslate(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"2020-12 as is, $schema dropped", `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object"}`, `{"type":"object"}`},
		{"draft-07 tuple", `{"$schema":"http://json-schema.org/draft-07/schema#","type":"array","items":[{"type":"string"},{"type":"number"}],"additionalItems":false}`,
			`{"items":false,"prefixItems":[{"type":"string"},{"type":"number"}],"type":"array"}`},
		{"draft-07 single items keeps items", `{"$schema":"http://json-schema.org/draft-07/schema#","items":{"type":"string"},"additionalItems":false}`, `{"items":{"type":"string"}}`},
		{"dependencies", `{"dependencies":{"a":["b"],"c":{"required":["d"]}}}`, `{"dependentRequired":{"a":["b"]},"dependentSchemas":{"c":{"required":["d"]}}}`},
		{"definitions", `{"definitions":{"x":{"type":"string"}},"properties":{"p":{"$ref":"#/definitions/x"}}}`, `{"$defs":{"x":{"type":"string"}},"properties":{"p":{"$ref":"#/$defs/x"}}}`},
		{"draft-04 exclusive", `{"$schema":"http://json-schema.org/draft-04/schema#","maximum":5,"exclusiveMaximum":true,"minimum":1,"exclusiveMinimum":false}`, `{"exclusiveMaximum":5,"minimum":1}`},
		{"data is not rewritten", `{"const":{"$ref":"#/definitions/x"}}`, `{"const":{"$ref":"#/definitions/x"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Translate(mustDecode(t, tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, canon(t, out)); d != "" {
				t.Fatal(d)
			}
		})
	}
	for _, bad := range []string{`{"$id":"x"}`, `{"properties":{"a":{"$anchor":"a"}}}`, `{"$dynamicRef":"#a"}`, `{"$recursiveRef":"#"}`, `{"$schema":"urn:other"}`} {
		if _, err := Translate(mustDecode(t, bad)); !errors.Is(err, ErrOmitted) {
			t.Errorf("%s: %v, want ErrOmitted", bad, err)
		}
	}
}

func TestRelocate(t *testing.T) {
	in := mustDecode(t, `{"type":"object","properties":{"n":{"$ref":"#/$defs/node"},"self":{"$ref":"#"}},
		"$defs":{"node":{"type":"object","properties":{"next":{"$ref":"#/$defs/node"},"leaf":{"$ref":"#/$defs/node/$defs/leaf"}},"$defs":{"leaf":{"type":"string"}}},"a b":{"type":"null"}}}`)
	defs := map[string]any{}
	root, err := Relocate(in, "op.Input", "#/components/schemas/", defs)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"properties":{"n":{"$ref":"#/components/schemas/op.Input.node"},"self":{"$ref":"#/components/schemas/op.Input"}},"type":"object"}`
	if d := cmp.Diff(want, canon(t, root)); d != "" {
		t.Fatal(d)
	}
	wantDefs := `{"op.Input.a_b":{"type":"null"},"op.Input.node":{"properties":{"leaf":{"$ref":"#/components/schemas/op.Input.node.leaf"},"next":{"$ref":"#/components/schemas/op.Input.node"}},"type":"object"},"op.Input.node.leaf":{"type":"string"}}`
	if d := cmp.Diff(wantDefs, canon(t, defs)); d != "" {
		t.Fatal(d)
	}
	if _, err := Relocate(mustDecode(t, `{"$ref":"other.json#/x"}`), "x", "#/", map[string]any{}); !errors.Is(err, ErrOmitted) {
		t.Fatalf("external ref: %v", err)
	}
}

// Every published schema is canonical JSON, free of $defs and definitions, whatever the input.
func FuzzTranslate(f *testing.F) {
	for _, s := range []string{`{"items":[true],"additionalItems":{"type":"string"}}`, `{"dependencies":{"a":["b"]}}`, `true`, `{"definitions":{"a":{}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Decode(b)
		if err != nil {
			return
		}
		out, err := Translate(v)
		if err != nil {
			return
		}
		if _, err := Canonical(out); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzRelocate(f *testing.F) {
	for _, s := range []string{`{"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}`, `{"$defs":{"a/b":{"$defs":{"~":{}}}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Decode(b)
		if err != nil {
			return
		}
		defs := map[string]any{}
		root, err := Relocate(v, "x.Input", "#/components/schemas/", defs)
		if err != nil {
			return
		}
		for _, s := range append([]any{root}, values(defs)...) {
			if m, ok := s.(map[string]any); ok {
				if _, has := m["$defs"]; has {
					t.Fatalf("$defs left in %v", m)
				}
			}
		}
	})
}

func values(m map[string]any) []any {
	var out []any
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
