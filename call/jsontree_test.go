package call

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"
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
	deep := bytes.Repeat([]byte("["), maxScanDepth+2)
	if _, err := decodeTree(deep); err == nil {
		t.Fatal("a document nested beyond the limit was accepted")
	}
}

// skipPlain's eight-byte steps agree with the byte table for every byte value at every
// position of a word.
func TestSkipPlainMatchesTable(t *testing.T) {
	naive := func(b []byte, i int) int {
		for i < len(b) && plainString[b[i]] {
			i++
		}
		return i
	}
	for c := range 256 {
		for pos := range 20 {
			b := bytes.Repeat([]byte("a"), 20)
			b[pos] = byte(c)
			for start := range 3 {
				if got, want := skipPlain(b, start), naive(b, start); got != want {
					t.Fatalf("byte %#x at %d from %d: skipPlain %d, table %d", c, pos, start, got, want)
				}
			}
		}
	}
}
