package schema

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/alkdev/alknet/call/internal/jsonscan"
)

var treeCases = []string{
	`null`, `true`, `false`, `0`, `-1.5e+3`, `"x"`, `""`, `[]`, `{}`, ` [1, "a", null, {"b": [true]}] `,
	`{"a":1,"a":2}`, `{"k\u00e9y":"v\n\"q\""}`, `"\ud83d\ude00"`, "\"\xff\xfe\"", `{"a":01}`, `[1,]`,
	`{"a":1}x`, `{"a"}`, `"\x01"`, `tru`, `[`, `{"a":[{"b":{"c":[[]]}}]}`, ``, `  `, `1 2`,
}

func checkTree(t *testing.T, b []byte) {
	t.Helper()
	got, gotErr := decodeTree(b)
	want, wantErr := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("decodeTree(%q): error %v, library error %v", b, gotErr, wantErr)
	}
	if gotErr != nil {
		return
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("decodeTree(%q) differs from the library (-want +got):\n%s", b, d)
	}
}

func TestDecodeTreeMatchesLibrary(t *testing.T) {
	for _, s := range treeCases {
		t.Run(s, func(t *testing.T) { checkTree(t, []byte(s)) })
	}
}

func TestDecodeTreeDepthBounded(t *testing.T) {
	deep := bytes.Repeat([]byte("["), jsonscan.MaxDepth+2)
	if _, err := decodeTree(deep); err == nil {
		t.Fatal("a document nested beyond the limit was accepted")
	}
}

// scanStringByBytes is the plain byte loop scanString must agree with.
func scanStringByBytes(b []byte, i int) (int, bool, bool) {
	i++
	escaped := false
	for i < len(b) {
		switch c := b[i]; {
		case c == '"':
			return i + 1, escaped, true
		case c < 0x20:
			return 0, false, false
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return 0, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return 0, false, false
				}
				for _, h := range b[i+2 : i+6] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return 0, false, false
					}
				}
				i += 6
			default:
				return 0, false, false
			}
		default:
			i++
		}
	}
	return 0, false, false
}

// scanString's word-wise search agrees with the byte loop for every byte value at every
// position of short and long strings, with and without escapes before it.
func TestScanStringMatchesByteLoop(t *testing.T) {
	for _, n := range []int{3, 17, 40} {
		for _, prefix := range []string{``, `\"x`, `\u00e9`, `\\`} {
			for c := range 256 {
				for pos := range n {
					b := append([]byte(`"`+prefix), bytes.Repeat([]byte("a"), n)...)
					b = append(b, '"', 'z')
					b[1+len(prefix)+pos] = byte(c)
					end, esc, err := jsonscan.ScanString(b, 0)
					wEnd, wEsc, wOK := scanStringByBytes(b, 0)
					if (err == nil) != wOK || end != wEnd || esc != wEsc {
						t.Fatalf("%q: scanString %d %v %v, byte loop %d %v %v", b, end, esc, err, wEnd, wEsc, wOK)
					}
				}
			}
		}
	}
}

// FuzzDecodeTree checks the schema-validation tree builder against the library's own
// decoder (encoding/json with UseNumber): same acceptance, same tree.
func FuzzDecodeTree(f *testing.F) {
	for _, s := range treeCases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkTree(t, b)
	})
}
