// Package schemadoc turns operation schemas into the ones the adapters publish (docs/http.md
// §2.5): canonical JSON bytes, JSON Schema 2020-12 without $schema, definitions relocated to
// the document's own place for them.
package schemadoc

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Canonical encodes v as canonical JSON: object keys sorted, numbers as written (json.Number),
// <, > and & unescaped, no trailing newline.
func Canonical(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Decode parses raw into plain values with numbers kept as written. Absent or empty raw is nil.
func Decode(raw json.RawMessage) (any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("schemadoc: trailing data after the schema")
	}
	return v, nil
}

// Drafts a schema can declare with $schema.
const (
	Draft4    = "draft-04"
	Draft6    = "draft-06"
	Draft7    = "draft-07"
	Draft2019 = "2019-09"
	Draft2020 = "2020-12"
)

// DraftOf names the draft of a schema's $schema ("" means 2020-12); ok is false for a URI
// that names none of them.
func DraftOf(schema any) (draft string, ok bool) {
	m, isMap := schema.(map[string]any)
	if !isMap {
		return Draft2020, true
	}
	uri, _ := m["$schema"].(string)
	switch {
	case uri == "":
		return Draft2020, true
	case strings.Contains(uri, "draft-04"):
		return Draft4, true
	case strings.Contains(uri, "draft-06"):
		return Draft6, true
	case strings.Contains(uri, "draft-07"):
		return Draft7, true
	case strings.Contains(uri, "2019-09"):
		return Draft2019, true
	case strings.Contains(uri, "2020-12"):
		return Draft2020, true
	}
	return "", false
}

// ErrOmitted matches the reasons a schema cannot be published (Translate).
var ErrOmitted = errors.New("schema cannot be published")

// Translate returns schema as JSON Schema 2020-12 without $schema (a deep copy): tuple items →
// prefixItems, additionalItems → items, dependencies → dependentRequired/dependentSchemas,
// definitions → $defs (references follow), draft-04 boolean exclusiveMaximum/Minimum →
// numeric. A schema using $id, $anchor, $dynamic*, $recursive* (or draft-04 id) cannot be
// relocated into another document: the error matches ErrOmitted and says why.
func Translate(schema any) (any, error) {
	draft, ok := DraftOf(schema)
	if !ok {
		return nil, fmt.Errorf("%w: unknown $schema", ErrOmitted)
	}
	t := translator{draft: draft}
	out := t.walk(schema, true)
	if t.err != nil {
		return nil, t.err
	}
	if m, ok := out.(map[string]any); ok {
		delete(m, "$schema")
	}
	return rewriteRefs(out, func(ref string) string {
		if rest, ok := strings.CutPrefix(ref, "#/definitions"); ok {
			return "#/$defs" + rest
		}
		return ref
	}), nil
}

type translator struct {
	draft string
	err   error
}

// Keywords whose value is one subschema, a map of them, or a list of them.
var (
	oneSchema  = []string{"additionalProperties", "contains", "not", "if", "then", "else", "propertyNames", "unevaluatedItems", "unevaluatedProperties", "additionalItems", "items"}
	schemaMaps = []string{"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
	schemaList = []string{"allOf", "anyOf", "oneOf", "prefixItems"}
)

func (t *translator) walk(v any, root bool) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v // true, false, or not a schema
	}
	for _, k := range []string{"$id", "$anchor", "$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor"} {
		if _, has := m[k]; has && t.err == nil {
			t.err = fmt.Errorf("%w: uses %s", ErrOmitted, k)
		}
	}
	if id, has := m["id"].(string); has && t.draft == Draft4 && id != "" && t.err == nil {
		t.err = fmt.Errorf("%w: uses id", ErrOmitted)
	}
	out := make(map[string]any, len(m))
	for k, val := range m {
		out[k] = val
	}
	if !root {
		delete(out, "$schema")
	}
	for _, k := range oneSchema {
		if s, has := out[k]; has {
			if _, isList := s.([]any); !isList {
				out[k] = t.walk(s, false)
			}
		}
	}
	for _, k := range schemaMaps {
		if sm, has := out[k].(map[string]any); has {
			cp := make(map[string]any, len(sm))
			for name, s := range sm {
				cp[name] = t.walk(s, false)
			}
			out[k] = cp
		}
	}
	for _, k := range schemaList {
		if l, has := out[k].([]any); has {
			out[k] = t.walkList(l)
		}
	}
	// Before 2020-12, an array of items is a tuple; additionalItems is what follows it.
	if l, isList := out["items"].([]any); isList {
		out["prefixItems"] = t.walkList(l)
		delete(out, "items")
		if ai, has := out["additionalItems"]; has {
			out["items"] = ai
		}
	}
	delete(out, "additionalItems") // without a tuple it has no effect
	if deps, has := out["dependencies"].(map[string]any); has {
		req, schemas := map[string]any{}, map[string]any{}
		for name, d := range deps {
			if l, isList := d.([]any); isList {
				req[name] = l
			} else {
				schemas[name] = t.walk(d, false)
			}
		}
		if len(req) > 0 {
			out["dependentRequired"] = req
		}
		if len(schemas) > 0 {
			out["dependentSchemas"] = schemas
		}
		delete(out, "dependencies")
	}
	if defs, has := out["definitions"].(map[string]any); has {
		merged, _ := out["$defs"].(map[string]any)
		if merged == nil {
			merged = map[string]any{}
		}
		for name, s := range defs {
			if _, dup := merged[name]; !dup {
				merged[name] = s
			}
		}
		out["$defs"] = merged
		delete(out, "definitions")
	}
	NumericExclusive(out)
	if t.draft == Draft4 {
		delete(out, "id")
	}
	return out
}

func (t *translator) walkList(l []any) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = t.walk(s, false)
	}
	return out
}

// dataKeywords hold instance values, not schemas: a "$ref" key inside them is data.
var dataKeywords = map[string]bool{"const": true, "default": true, "enum": true, "examples": true, "example": true}

// NumericExclusive turns draft-04's (and OpenAPI 3.0's) boolean exclusiveMaximum and
// exclusiveMinimum into the later numeric form, in place: true takes the bound's value (the
// bound goes), false is dropped.
func NumericExclusive(m map[string]any) {
	for _, pair := range [][2]string{{"exclusiveMaximum", "maximum"}, {"exclusiveMinimum", "minimum"}} {
		if b, isBool := m[pair[0]].(bool); isBool {
			if b && m[pair[1]] != nil {
				m[pair[0]] = m[pair[1]]
				delete(m, pair[1])
			} else {
				delete(m, pair[0])
			}
		}
	}
}

// EachSchema returns a copy of schema with f applied to every schema object in it, the
// subschemas first (found by keyword, so property names are never taken for keywords).
func EachSchema(schema any, f func(map[string]any) map[string]any) any {
	m, ok := schema.(map[string]any)
	if !ok {
		return schema
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for _, k := range oneSchema {
		if s, has := out[k]; has {
			if l, isList := s.([]any); isList {
				out[k] = eachList(l, f)
			} else {
				out[k] = EachSchema(s, f)
			}
		}
	}
	for _, k := range append(schemaMaps, "dependencies") {
		if sm, has := out[k].(map[string]any); has {
			cp := make(map[string]any, len(sm))
			for name, s := range sm {
				cp[name] = EachSchema(s, f)
			}
			out[k] = cp
		}
	}
	for _, k := range schemaList {
		if l, has := out[k].([]any); has {
			out[k] = eachList(l, f)
		}
	}
	return f(out)
}

func eachList(l []any, f func(map[string]any) map[string]any) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = EachSchema(s, f)
	}
	return out
}

// rewriteRefs returns v with every string "$ref" replaced by f(ref) (v is changed in place).
func rewriteRefs(v any, f func(string) string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if s, ok := val.(string); ok && k == "$ref" {
				x[k] = f(s)
				continue
			}
			if !dataKeywords[k] {
				x[k] = rewriteRefs(val, f)
			}
		}
	case []any:
		for i, val := range x {
			x[i] = rewriteRefs(val, f)
		}
	}
	return v
}

// Relocate takes the definitions out of a translated schema for a document that keeps them
// elsewhere: every $defs entry (nested ones too, named "a.b") moves to defs under
// name+"."+entry, and every "#…" reference is rewritten to base + its new name (base is, for
// example, "#/components/schemas/"). Entry names are sanitised to [A-Za-z0-9._-]; a collision
// gets "_" and eight hex digits.
// The schema returned is the root, its references to itself pointing at base+name.
func Relocate(schema any, name, base string, defs map[string]any) (any, error) {
	type moved struct {
		pointer, name string
		schema        any
	}
	var found []moved
	var collect func(s any, pointer, prefix string)
	collect = func(s any, pointer, prefix string) {
		m, ok := s.(map[string]any)
		if !ok {
			return
		}
		d, ok := m["$defs"].(map[string]any)
		if !ok {
			return
		}
		keys := make([]string, 0, len(d))
		for k := range d {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := pointer + "/$defs/" + escapePointer(k)
			n := prefix + "." + Sanitize(k)
			found = append(found, moved{p, n, d[k]})
			collect(d[k], p, n)
		}
	}
	collect(schema, "", name)
	used := map[string]bool{}
	names := map[string]string{"": name} // pointer → new name
	for i, f := range found {
		n := f.name
		if _, taken := defs[n]; taken || used[n] {
			sum := sha256.Sum256([]byte(f.pointer))
			n += "_" + hex.EncodeToString(sum[:4])
		}
		used[n] = true
		found[i].name = n
		names[f.pointer] = n
	}
	rewrite := func(ref string) string {
		frag, ok := strings.CutPrefix(ref, "#")
		if !ok {
			return ref
		}
		best := ""
		for p := range names {
			if (frag == p || strings.HasPrefix(frag, p+"/")) && len(p) >= len(best) {
				best = p
			}
		}
		return base + names[best] + frag[len(best):]
	}
	if err := checkRefs(schema); err != nil {
		return nil, err
	}
	// Each schema loses its $defs before its references are rewritten, so every subschema is
	// rewritten exactly once.
	for _, f := range found {
		defs[f.name] = rewriteRefs(withoutDefs(f.schema), rewrite)
	}
	return rewriteRefs(withoutDefs(schema), rewrite), nil
}

// checkRefs refuses references that do not point into the schema itself.
func checkRefs(v any) error {
	var err error
	rewriteRefs(v, func(ref string) string {
		if !strings.HasPrefix(ref, "#") && err == nil {
			err = fmt.Errorf("%w: external reference %q", ErrOmitted, ref)
		}
		return ref
	})
	return err
}

// withoutDefs returns a shallow copy of an object schema without $defs.
func withoutDefs(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := make(map[string]any, len(m))
	for k, val := range m {
		if k != "$defs" {
			out[k] = val
		}
	}
	return out
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// Sanitize maps characters outside [A-Za-z0-9._-] to '_' (component names).
func Sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}
