package schema

import (
	"slices"
	"unicode/utf8"

	"github.com/alkdev/alknet/call/internal/jsonscan"
)

// fastSchema validates instances of the schemas most operations declare (type, properties,
// required, additionalProperties, items, plus annotations) directly on the raw bytes, with no
// tree and no allocation. It only ever accepts: any doubt (a keyword outside that subset at
// compile time; a duplicate key, an escaped key, a non-trivial integer or an invalid instance
// at run time) sends the instance to the full validator, which decides and words the error.
// The full validator cost ~8% of a server's CPU per unary call on a one-property schema.
type fastSchema struct {
	never      bool  // the schema false
	types      uint8 // bit set of jsonType; 0 = any type
	propNames  []string
	props      []*fastSchema // per propNames; nil = anything
	required   uint64        // bits over propNames
	noExtra    bool          // additionalProperties: false
	extra      *fastSchema   // additionalProperties as a schema; nil = anything
	items      *fastSchema
	objectRule bool // properties, required or additionalProperties present
}

const (
	typeNull uint8 = 1 << iota
	typeBoolean
	typeObject
	typeArray
	typeNumber
	typeInteger
	typeString
)

var typeBits = map[string]uint8{
	"null": typeNull, "boolean": typeBoolean, "object": typeObject, "array": typeArray,
	"number": typeNumber, "integer": typeInteger, "string": typeString,
}

// annotations change no validation result under the default 2020-12 dialect (format is an
// annotation unless the format-assertion vocabulary is on, and "$schema" is not accepted here).
var annotations = []string{"title", "description", "$comment", "examples", "default", "format", "deprecated", "readOnly", "writeOnly"}

// compileFast returns the fast form of a schema document the library already compiled, or
// nil when the schema uses anything outside the subset.
func compileFast(doc any, depth int) *fastSchema {
	if depth > 32 {
		return nil
	}
	switch v := doc.(type) {
	case bool:
		return &fastSchema{never: !v}
	case map[string]any:
		s := &fastSchema{}
		for k, kv := range v {
			switch {
			case k == "type":
				if !s.compileType(kv) {
					return nil
				}
			case k == "properties":
				props, ok := kv.(map[string]any)
				if !ok {
					return nil
				}
				for name, ps := range props {
					sub := compileFast(ps, depth+1)
					if sub == nil {
						return nil
					}
					s.addProp(name, sub)
				}
				s.objectRule = true
			case k == "required":
				// after the loop: properties may come later in map order
			case k == "additionalProperties":
				if b, ok := kv.(bool); ok {
					s.noExtra = !b
				} else if s.extra = compileFast(kv, depth+1); s.extra == nil {
					return nil
				}
				s.objectRule = true
			case k == "items":
				if s.items = compileFast(kv, depth+1); s.items == nil {
					return nil
				}
			case slices.Contains(annotations, k):
			default:
				return nil
			}
		}
		if req, ok := v["required"]; ok {
			names, ok := req.([]any)
			if !ok {
				return nil
			}
			for _, n := range names {
				name, ok := n.(string)
				if !ok {
					return nil
				}
				i := s.addProp(name, nil)
				if i >= 64 {
					return nil
				}
				s.required |= 1 << i
			}
			s.objectRule = true
		}
		if len(s.propNames) > 64 {
			return nil
		}
		return s
	}
	return nil
}

func (s *fastSchema) compileType(v any) bool {
	switch t := v.(type) {
	case string:
		b, ok := typeBits[t]
		s.types |= b
		return ok
	case []any:
		for _, e := range t {
			if !s.compileType(e) {
				return false
			}
		}
		return len(t) > 0
	}
	return false
}

// addProp returns the index of name, adding it (with schema sub) when new.
func (s *fastSchema) addProp(name string, sub *fastSchema) int {
	if i := slices.Index(s.propNames, name); i >= 0 {
		if sub != nil {
			s.props[i] = sub
		}
		return i
	}
	s.propNames = append(s.propNames, name)
	s.props = append(s.props, sub)
	return len(s.propNames) - 1
}

// accepts reports whether the document b is certainly valid.
func (s *fastSchema) accepts(b []byte) bool {
	i := jsonscan.SkipWS(b, 0)
	end, ok := s.value(b, i, 0)
	return ok && jsonscan.SkipWS(b, end) == len(b)
}

// value checks the value at b[i] and returns the index after it.
func (s *fastSchema) value(b []byte, i, depth int) (int, bool) {
	if s.never || i >= len(b) || depth > jsonscan.MaxDepth {
		return 0, false
	}
	c := b[i]
	if s.types != 0 && !s.typeOK(b, i, c) {
		return 0, false
	}
	switch {
	case c == '{' && s.objectRule:
		return s.object(b, i, depth)
	case c == '[' && s.items != nil:
		return s.array(b, i, depth)
	}
	end, err := jsonscan.ScanValue(b, i, depth)
	return end, err == nil
}

func (s *fastSchema) typeOK(b []byte, i int, c byte) bool {
	var t uint8
	switch c {
	case '"':
		t = typeString
	case '{':
		t = typeObject
	case '[':
		t = typeArray
	case 't', 'f':
		t = typeBoolean
	case 'n':
		t = typeNull
	default:
		if s.types&typeNumber != 0 {
			return true
		}
		// An integer literal is an integer; 1.0 or 1e2 are left to the full validator.
		end, err := jsonscan.ScanNumber(b, i)
		if err != nil {
			return false
		}
		for _, d := range b[i:end] {
			if d == '.' || d == 'e' || d == 'E' {
				return false
			}
		}
		t = typeInteger
	}
	return s.types&t != 0
}

func (s *fastSchema) object(b []byte, i, depth int) (int, bool) {
	var seen uint64
	i = jsonscan.SkipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, s.required == 0
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, false
		}
		kEnd, kEsc, err := jsonscan.ScanString(b, i)
		if err != nil || kEsc {
			return 0, false
		}
		key := b[i+1 : kEnd-1]
		if !utf8.Valid(key) {
			return 0, false // decoded, it would read U+FFFD: the full validator decides
		}
		i = jsonscan.SkipWS(b, kEnd)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		i = jsonscan.SkipWS(b, i+1)
		sub, known := (*fastSchema)(nil), false
		for n, name := range s.propNames {
			if name == string(key) {
				if seen&(1<<n) != 0 {
					return 0, false // a repeated key: the full validator sees the last value
				}
				seen |= 1 << n
				sub, known = s.props[n], true
				break
			}
		}
		if !known {
			if s.noExtra {
				return 0, false
			}
			sub = s.extra
		}
		var ok bool
		if sub != nil {
			i, ok = sub.value(b, i, depth+1)
		} else {
			i, err = jsonscan.ScanValue(b, i, depth+1)
			ok = err == nil
		}
		if !ok {
			return 0, false
		}
		var done bool
		if i, done, err = jsonscan.AfterElement(b, i, '}'); err != nil {
			return 0, false
		}
		if done {
			return i, seen&s.required == s.required
		}
	}
}

func (s *fastSchema) array(b []byte, i, depth int) (int, bool) {
	i = jsonscan.SkipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if i, ok = s.items.value(b, i, depth+1); !ok {
			return 0, false
		}
		var done bool
		var err error
		if i, done, err = jsonscan.AfterElement(b, i, ']'); err != nil {
			return 0, false
		}
		if done {
			return i, true
		}
	}
}
