package app

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"demo/ech", "demo/echo", 1},
		{"demo/tiker", "demo/ticker", 1}, {"kitten", "sitting", 3}, {"démo", "demo", 1},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := editDistance(tc.b, tc.a); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, not symmetric", tc.b, tc.a, got)
		}
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"demo/add", "demo/echo", "demo/sleep", "demo/ticker", "node/info", "node/health"}
	for _, tc := range []struct {
		op   string
		want []string
	}{
		{"demo/ech", []string{"demo/echo"}},
		{"demo/adds", []string{"demo/add"}},
		{"node/inf", []string{"node/info"}},
		{"demo/echo", nil}, // itself is not a suggestion
		{"zzz", nil},       // nothing near
		{"demo/", nil},     // a prefix is not near enough to every name
		{"dem/add", []string{"demo/add"}},
	} {
		if diff := cmp.Diff(tc.want, suggest(tc.op, names)); diff != "" {
			t.Errorf("suggest(%q) (-want +got):\n%s", tc.op, diff)
		}
	}
}

// A new mnemonic on a terminal: numbered words, four to a row, in order.
func TestMnemonicGrid(t *testing.T) {
	var out bytes.Buffer
	words := strings.Fields("abandon ability able about above absent absorb abstract absurd abuse access accident")
	printMnemonicGrid(&env{stdout: &out}, []byte(strings.Join(words, " ")))
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "12 words") {
		t.Fatalf("grid:\n%s", out.String())
	}
	for i, w := range words {
		row := lines[1+i/4]
		if !strings.Contains(row, strconv.Itoa(i+1)+". "+w) {
			t.Fatalf("word %d (%s) not in row %q", i+1, w, row)
		}
	}
}
