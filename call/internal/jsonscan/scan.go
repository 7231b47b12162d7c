// Package jsonscan is a small JSON scanner for the alknet/call hot paths: it validates syntax
// and returns the raw spans of an object's members in one pass, without reflection or a second
// validation pass (encoding/json's Decoder cost ~30% of a call's CPU in profiles), and appends
// JSON strings without allocating. Values stay raw bytes. docs/performance.md, ADR 0009.
package jsonscan

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// ErrSyntax is every syntax error the scanner reports.
var ErrSyntax = errors.New("invalid JSON")

// IsWS reports JSON white space.
func IsWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// SkipWS returns the index of the first byte at or after i that is not white space.
func SkipWS(b []byte, i int) int {
	for i < len(b) && IsWS(b[i]) {
		i++
	}
	return i
}

// ScanString returns the index after the string starting at b[i] == '"' and whether it held
// an escape. The closing quote and the backslashes are found with bytes.IndexByte
// (vectorised) and the bytes between are checked for control characters eight at a time:
// subscription items are ~1 KiB strings, and a byte loop was a quarter of a subscriber's CPU.
// Every byte is searched once: the quote found stays the candidate until an escape passes it.
func ScanString(b []byte, i int) (int, bool, error) {
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
				return 0, false, ErrSyntax
			}
			q = i + k
		}
		end := q
		if k := bytes.IndexByte(b[i:q], '\\'); k >= 0 {
			end = i + k
		}
		if HasControl(b[i:end]) {
			return 0, false, ErrSyntax
		}
		if end == q {
			return q + 1, escaped, nil
		}
		escaped = true
		i = end
		if i+1 >= len(b) {
			return 0, false, ErrSyntax
		}
		switch b[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			if i+6 > len(b) {
				return 0, false, ErrSyntax
			}
			for _, h := range b[i+2 : i+6] {
				if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
					return 0, false, ErrSyntax
				}
			}
			i += 6
		default:
			return 0, false, ErrSyntax
		}
	}
}

// SWAR constants: a byte-wise test on eight bytes at once.
const (
	msb      = 0x8080808080808080
	controls = 0x2020202020202020
)

// HasControl reports whether b holds a byte below 0x20. A word holds none when no byte
// borrows in w - 0x20 per byte; bytes >= 0x80 pass, as they should inside a string.
func HasControl(b []byte) bool {
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

// ScanNumber validates a JSON number at b[i].
func ScanNumber(b []byte, i int) (int, error) {
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
		return 0, ErrSyntax
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, ErrSyntax
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
			return 0, ErrSyntax
		}
	}
	if i == start {
		return 0, ErrSyntax
	}
	return i, nil
}

// MaxDepth bounds the nesting of arrays and objects.
const MaxDepth = 10000

// ScanValue returns the index after the value starting at b[i] (no leading white space).
func ScanValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) || depth > MaxDepth {
		return 0, ErrSyntax
	}
	switch c := b[i]; {
	case c == '"':
		end, _, err := ScanString(b, i)
		return end, err
	case c == '{':
		return ScanObject(b, i, depth, nil)
	case c == '[':
		i = SkipWS(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, nil
		}
		for {
			var err error
			if i, err = ScanValue(b, i, depth+1); err != nil {
				return 0, err
			}
			var done bool
			if i, done, err = AfterElement(b, i, ']'); err != nil || done {
				return i, err
			}
		}
	case c == 't':
		return Literal(b, i, "true")
	case c == 'f':
		return Literal(b, i, "false")
	case c == 'n':
		return Literal(b, i, "null")
	default:
		return ScanNumber(b, i)
	}
}

// Literal checks the literal lit (true, false, null) at b[i].
func Literal(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, ErrSyntax
	}
	return i + len(lit), nil
}

// ScanObject validates the object at b[i] == '{' and calls member for each key (raw, with
// quotes) and value span.
func ScanObject(b []byte, i, depth int, member func(key []byte, keyEscaped bool, val []byte) error) (int, error) {
	return ScanObjectNested(b, i, depth, member, "", nil)
}

// MemberFunc receives an object member: its key (raw, with quotes) and value span.
type MemberFunc func(key []byte, keyEscaped bool, val []byte) error

// ScanObjectNested is scanObject that also reports, to nested, the members of the value of
// nestedKey (raw, with quotes) when it is an object, during the same pass.
func ScanObjectNested(b []byte, i, depth int, member MemberFunc, nestedKey string, nested MemberFunc) (int, error) {
	i = SkipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, ErrSyntax
		}
		kEnd, kEsc, err := ScanString(b, i)
		if err != nil {
			return 0, err
		}
		key := b[i:kEnd]
		i = SkipWS(b, kEnd)
		if i >= len(b) || b[i] != ':' {
			return 0, ErrSyntax
		}
		i = SkipWS(b, i+1)
		vStart := i
		if nested != nil && i < len(b) && b[i] == '{' && string(key) == nestedKey {
			if depth+1 > MaxDepth {
				return 0, ErrSyntax
			}
			i, err = ScanObjectNested(b, i, depth+1, nested, "", nil)
		} else {
			i, err = ScanValue(b, i, depth+1)
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
		if i, done, err = AfterElement(b, i, '}'); err != nil || done {
			return i, err
		}
	}
}

// AfterElement reads what follows an array element or object member: the closer (done, and
// the index after it) or a comma (the index of the next element).
func AfterElement(b []byte, i int, closer byte) (int, bool, error) {
	i = SkipWS(b, i)
	switch {
	case i >= len(b):
		return 0, false, ErrSyntax
	case b[i] == closer:
		return i + 1, true, nil
	case b[i] != ',':
		return 0, false, ErrSyntax
	}
	return SkipWS(b, i+1), false, nil
}

// Members scans a whole document that must be one object, calling member for each member.
// The key is only valid during the call (callers compare it with string(key), which does
// not allocate).
func Members(b []byte, member func(key []byte, val []byte) error) error {
	return MembersNested(b, func(key []byte, _ bool, val []byte) error { return member(key, val) }, "", nil)
}

// MembersNested is members with scanObjectNested's nested report for one top-level key (only
// when written without escapes, which member learns from its keyEscaped argument).
func MembersNested(b []byte, member func(key []byte, keyEscaped bool, val []byte) error, nestedKey string, nested MemberFunc) error {
	i := SkipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return ErrSyntax
	}
	end, err := ScanObjectNested(b, i, 0, func(key []byte, esc bool, val []byte) error {
		k := key[1 : len(key)-1]
		if esc {
			var u string
			if json.Unmarshal(key, &u) != nil {
				return ErrSyntax
			}
			k = []byte(u)
		}
		return member(k, esc, val)
	}, nestedKey, nested)
	if err != nil {
		return err
	}
	if SkipWS(b, end) != len(b) {
		return ErrSyntax
	}
	return nil
}

// StringValue decodes a raw JSON string value; ok is false for any other JSON type. A value
// equal to one of interned is returned as that string, without allocating.
func StringValue(raw []byte, interned []string) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	for _, t := range interned {
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

// AppendString appends s as a JSON string, escaping only what JSON requires (<, > and & stay
// as they are; U+2028/U+2029 are escaped like encoding/json does; invalid UTF-8 becomes U+FFFD).
func AppendString(b []byte, s string) []byte {
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

// Valid reports whether b is exactly one JSON value (with surrounding white space).
func Valid(b []byte) bool {
	i := SkipWS(b, 0)
	end, err := ScanValue(b, i, 0)
	return err == nil && SkipWS(b, end) == len(b)
}

// Elements scans a whole document that must be one array, calling elem with each element's
// span (white space trimmed); an error from elem stops the scan and is returned.
func Elements(b []byte, elem func(val []byte) error) error {
	i := SkipWS(b, 0)
	if i >= len(b) || b[i] != '[' {
		return ErrSyntax
	}
	i = SkipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		i++
	} else {
		for {
			start := i
			end, err := ScanValue(b, i, 1)
			if err != nil {
				return err
			}
			if err := elem(b[start:end]); err != nil {
				return err
			}
			var done bool
			if i, done, err = AfterElement(b, end, ']'); err != nil {
				return err
			} else if done {
				break
			}
		}
	}
	if SkipWS(b, i) != len(b) {
		return ErrSyntax
	}
	return nil
}
