package schema

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/alkdev/alknet/call/internal/jsonscan"
)

// decodeTree parses one JSON document into the generic form JSON Schema validation works on
// (map[string]any, []any, json.Number, string, bool, nil), the form encoding/json produces
// with UseNumber. It parses in one pass on the scanner above: encoding/json's reflection and
// deep recursion made schema validation a fifth of a server's CPU per call (profile of the
// unary benchmark), half of it in goroutine stack growth.
func decodeTree(b []byte) (any, error) {
	i := jsonscan.SkipWS(b, 0)
	v, end, err := treeValue(b, i, 0)
	if err != nil {
		return nil, err
	}
	if jsonscan.SkipWS(b, end) != len(b) {
		return nil, jsonscan.ErrSyntax
	}
	return v, nil
}

func treeValue(b []byte, i, depth int) (any, int, error) {
	if i >= len(b) || depth > jsonscan.MaxDepth {
		return nil, 0, jsonscan.ErrSyntax
	}
	switch c := b[i]; {
	case c == '"':
		end, esc, err := jsonscan.ScanString(b, i)
		if err != nil {
			return nil, 0, err
		}
		s, err := treeString(b[i:end], esc)
		return s, end, err
	case c == '{':
		return treeObject(b, i, depth)
	case c == '[':
		arr := []any{}
		i = jsonscan.SkipWS(b, i+1)
		if i < len(b) && b[i] == ']' {
			return arr, i + 1, nil
		}
		for {
			v, next, err := treeValue(b, i, depth+1)
			if err != nil {
				return nil, 0, err
			}
			arr = append(arr, v)
			var done bool
			if i, done, err = jsonscan.AfterElement(b, next, ']'); err != nil || done {
				return arr, i, err
			}
		}
	case c == 't':
		end, err := jsonscan.Literal(b, i, "true")
		return true, end, err
	case c == 'f':
		end, err := jsonscan.Literal(b, i, "false")
		return false, end, err
	case c == 'n':
		end, err := jsonscan.Literal(b, i, "null")
		return nil, end, err
	default:
		end, err := jsonscan.ScanNumber(b, i)
		if err != nil {
			return nil, 0, err
		}
		return json.Number(b[i:end]), end, nil
	}
}

func treeObject(b []byte, i, depth int) (any, int, error) {
	obj := map[string]any{}
	i = jsonscan.SkipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return obj, i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return nil, 0, jsonscan.ErrSyntax
		}
		kEnd, kEsc, err := jsonscan.ScanString(b, i)
		if err != nil {
			return nil, 0, err
		}
		key, err := treeString(b[i:kEnd], kEsc)
		if err != nil {
			return nil, 0, err
		}
		i = jsonscan.SkipWS(b, kEnd)
		if i >= len(b) || b[i] != ':' {
			return nil, 0, jsonscan.ErrSyntax
		}
		v, next, err := treeValue(b, jsonscan.SkipWS(b, i+1), depth+1)
		if err != nil {
			return nil, 0, err
		}
		obj[key] = v // a repeated key keeps the last value, like encoding/json
		var done bool
		if i, done, err = jsonscan.AfterElement(b, next, '}'); err != nil || done {
			return obj, i, err
		}
	}
}

// treeString decodes a scanned string literal (quotes included). Escapes and invalid UTF-8
// (replaced by U+FFFD) are rare and left to encoding/json.
func treeString(lit []byte, escaped bool) (string, error) {
	inner := lit[1 : len(lit)-1]
	if !escaped && utf8.Valid(inner) {
		return string(inner), nil
	}
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return "", jsonscan.ErrSyntax
	}
	return s, nil
}
