package call

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// A small JSON scanner for the envelope path: it validates syntax and returns the raw spans
// of an object's members in one pass, without reflection or a second validation pass
// (encoding/json's Decoder cost ~30% of a call's CPU in profiles). Values stay raw bytes.

var errSyntax = errors.New("invalid JSON")

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

// scanString returns the index after the string starting at b[i] == '"' and whether it held
// an escape. The closing quote and the backslashes are found with bytes.IndexByte
// (vectorised) and the bytes between are checked for control characters eight at a time:
// subscription items are ~1 KiB strings, and a byte loop was a quarter of a subscriber's CPU.
// Every byte is searched once: the quote found stays the candidate until an escape passes it.
func scanString(b []byte, i int) (int, bool, error) {
	i++
	// Keys, ids and event types end within a few bytes: a byte loop is quicker for them.
	for n := 0; n < 16 && i < len(b); n++ {
		c := b[i]
		if c == '"' {
			return i + 1, false, nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		i++
	}
	escaped := false
	q := -1 // the next quote at or after i, escaped or not
	for {
		if q < i {
			k := bytes.IndexByte(b[i:], '"')
			if k < 0 {
				return 0, false, errSyntax
			}
			q = i + k
		}
		end := q
		if k := bytes.IndexByte(b[i:q], '\\'); k >= 0 {
			end = i + k
		}
		if hasControl(b[i:end]) {
			return 0, false, errSyntax
		}
		if end == q {
			return q + 1, escaped, nil
		}
		escaped = true
		i = end
		if i+1 >= len(b) {
			return 0, false, errSyntax
		}
		switch b[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			if i+6 > len(b) {
				return 0, false, errSyntax
			}
			for _, h := range b[i+2 : i+6] {
				if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
					return 0, false, errSyntax
				}
			}
			i += 6
		default:
			return 0, false, errSyntax
		}
	}
}

// SWAR constants: a byte-wise test on eight bytes at once.
const (
	msb      = 0x8080808080808080
	controls = 0x2020202020202020
)

// hasControl reports whether b holds a byte below 0x20. A word holds none when no byte
// borrows in w - 0x20 per byte; bytes >= 0x80 pass, as they should inside a string.
func hasControl(b []byte) bool {
	j := 0
	for ; j+16 <= len(b); j += 16 {
		w, v := binary.LittleEndian.Uint64(b[j:]), binary.LittleEndian.Uint64(b[j+8:])
		if ((w-controls)&^w|(v-controls)&^v)&msb != 0 {
			return true
		}
	}
	for ; j < len(b); j++ {
		if b[j] < 0x20 {
			return true
		}
	}
	return false
}

// scanNumber validates a JSON number at b[i].
func scanNumber(b []byte, i int) (int, error) {
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return 0, errSyntax
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, errSyntax
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, errSyntax
		}
	}
	if i == start {
		return 0, errSyntax
	}
	return i, nil
}

const maxScanDepth = 10000

// scanValue returns the index after the value starting at b[i] (no leading white space).
func scanValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) || depth > maxScanDepth {
		return 0, errSyntax
	}
	switch c := b[i]; {
	case c == '"':
		end, _, err := scanString(b, i)
		return end, err
	case c == '{':
		return scanObject(b, i, depth, nil)
	case c == '[':
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, nil
		}
		for {
			var err error
			if i, err = scanValue(b, i, depth+1); err != nil {
				return 0, err
			}
			var done bool
			if i, done, err = afterElement(b, i, ']'); err != nil || done {
				return i, err
			}
		}
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	default:
		return scanNumber(b, i)
	}
}

func literal(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, errSyntax
	}
	return i + len(lit), nil
}

// scanObject validates the object at b[i] == '{' and calls member for each key (raw, with
// quotes) and value span.
func scanObject(b []byte, i, depth int, member func(key []byte, keyEscaped bool, val []byte) error) (int, error) {
	return scanObjectNested(b, i, depth, member, "", nil)
}

// memberFunc receives an object member: its key (raw, with quotes) and value span.
type memberFunc func(key []byte, keyEscaped bool, val []byte) error

// scanObjectNested is scanObject that also reports, to nested, the members of the value of
// nestedKey (raw, with quotes) when it is an object, during the same pass.
func scanObjectNested(b []byte, i, depth int, member memberFunc, nestedKey string, nested memberFunc) (int, error) {
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, errSyntax
		}
		kEnd, kEsc, err := scanString(b, i)
		if err != nil {
			return 0, err
		}
		key := b[i:kEnd]
		i = skipWS(b, kEnd)
		if i >= len(b) || b[i] != ':' {
			return 0, errSyntax
		}
		i = skipWS(b, i+1)
		vStart := i
		if nested != nil && i < len(b) && b[i] == '{' && string(key) == nestedKey {
			if depth+1 > maxScanDepth {
				return 0, errSyntax
			}
			i, err = scanObjectNested(b, i, depth+1, nested, "", nil)
		} else {
			i, err = scanValue(b, i, depth+1)
		}
		if err != nil {
			return 0, err
		}
		if member != nil {
			if err := member(key, kEsc, b[vStart:i]); err != nil {
				return 0, err
			}
		}
		var done bool
		if i, done, err = afterElement(b, i, '}'); err != nil || done {
			return i, err
		}
	}
}

// afterElement reads what follows an array element or object member: the closer (done, and
// the index after it) or a comma (the index of the next element).
func afterElement(b []byte, i int, closer byte) (int, bool, error) {
	i = skipWS(b, i)
	switch {
	case i >= len(b):
		return 0, false, errSyntax
	case b[i] == closer:
		return i + 1, true, nil
	case b[i] != ',':
		return 0, false, errSyntax
	}
	return skipWS(b, i+1), false, nil
}

// members scans a whole document that must be one object, calling member for each member.
// The key is only valid during the call (callers compare it with string(key), which does
// not allocate).
func members(b []byte, member func(key []byte, val []byte) error) error {
	return membersNested(b, func(key []byte, _ bool, val []byte) error { return member(key, val) }, "", nil)
}

// membersNested is members with scanObjectNested's nested report for one top-level key (only
// when written without escapes, which member learns from its keyEscaped argument).
func membersNested(b []byte, member func(key []byte, keyEscaped bool, val []byte) error, nestedKey string, nested memberFunc) error {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errSyntax
	}
	end, err := scanObjectNested(b, i, 0, func(key []byte, esc bool, val []byte) error {
		k := key[1 : len(key)-1]
		if esc {
			var u string
			if json.Unmarshal(key, &u) != nil {
				return errSyntax
			}
			k = []byte(u)
		}
		return member(k, esc, val)
	}, nestedKey, nested)
	if err != nil {
		return err
	}
	if skipWS(b, end) != len(b) {
		return errSyntax
	}
	return nil
}

// eventTypes are interned so decoding an envelope's type allocates nothing.
var eventTypes = []string{EventRequested, EventResponded, EventCompleted, EventAborted, EventError}

// stringValue decodes a raw JSON string value; ok is false for any other JSON type.
func stringValue(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	for _, t := range eventTypes {
		if string(inner) == t {
			return t, true
		}
	}
	for _, c := range inner {
		if c == '\\' {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return "", false
			}
			return s, true
		}
	}
	return string(inner), true
}

// appendString appends s as a JSON string, escaping only what JSON requires (<, > and & stay
// as they are; U+2028/U+2029 are escaped like encoding/json does; invalid UTF-8 becomes U+FFFD).
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// validJSON reports whether b is exactly one JSON value (with surrounding white space).
func validJSON(b []byte) bool {
	i := skipWS(b, 0)
	end, err := scanValue(b, i, 0)
	return err == nil && skipWS(b, end) == len(b)
}
