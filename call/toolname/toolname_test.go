package toolname_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/alkdev/alknet/call/toolname"
)

// docs/http.md §2.3 (checklist 15).
func TestNamesAtStart(t *testing.T) {
	long := strings.Repeat("x", 70)
	tests := []struct {
		name string
		ops  []string
		want map[string]string
	}{
		{"plain", []string{"demo/echo", "node/info"}, map[string]string{"demo/echo": "demo_echo", "node/info": "node_info"}},
		{"collision hashes both", []string{"a/b_c", "a_b/c"}, map[string]string{
			"a/b_c": toolname.Hashed("a/b_c"), "a_b/c": toolname.Hashed("a_b/c")}},
		{"collision in the other order", []string{"a_b/c", "a/b_c"}, map[string]string{
			"a/b_c": toolname.Hashed("a/b_c"), "a_b/c": toolname.Hashed("a_b/c")}},
		{"too long", []string{long}, map[string]string{long: toolname.Hashed(long)}},
		{"reserved", []string{"list"}, map[string]string{"list": toolname.Hashed("list")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := toolname.New(tc.ops, "list")
			for op, want := range tc.want {
				got, ok := m.Name(op, nil)
				if !ok || got != want {
					t.Errorf("Name(%q) = %q, %v; want %q", op, got, ok, want)
				}
				if !toolname.Valid(got) {
					t.Errorf("%q is not a valid name", got)
				}
			}
		})
	}
	if n := len(toolname.Hashed(long)); n != toolname.MaxLen {
		t.Errorf("hashed 70-character name has %d characters, want 64", n)
	}
}

func TestNamesHoldForTheProcess(t *testing.T) {
	m := toolname.New([]string{"demo/echo"})
	// A later op whose base is taken gets the hashed name; the first keeps its own.
	if got, _ := m.Name("demo_echo", nil); got != toolname.Hashed("demo_echo") {
		t.Errorf("later colliding op named %q, want the hashed name", got)
	}
	if got, _ := m.Name("demo/echo", nil); got != "demo_echo" {
		t.Errorf("first op renamed to %q", got)
	}
	// An absent op keeps its name: asking again (it came back) gives the same one.
	absent := func(string) bool { return false }
	if got, _ := m.Name("w1/demo/echo", absent); got != "w1_demo_echo" {
		t.Fatalf("got %q", got)
	}
	if got, _ := m.Name("w1/demo/echo", absent); got != "w1_demo_echo" {
		t.Errorf("name moved to %q", got)
	}
	if op, ok := m.Lookup("w1_demo_echo"); !ok || op != "w1/demo/echo" {
		t.Errorf("Lookup = %q, %v", op, ok)
	}
}

func TestFullMapForgetsAbsentFirst(t *testing.T) {
	m := toolname.New(nil)
	for i := range toolname.MaxEntries {
		if _, ok := m.Name("op/"+strings.Repeat("a", i%7)+string(rune('A'+i%26))+strconv.Itoa(i), nil); !ok {
			t.Fatalf("entry %d refused", i)
		}
	}
	allPresent := func(string) bool { return true }
	if _, ok := m.Name("new/op", allPresent); ok {
		t.Fatal("a full map with every op present took another")
	}
	if _, ok := m.Name("new/op", func(op string) bool { return op != "op/A0" }); !ok {
		t.Fatal("a full map did not forget an absent op")
	}
	if _, ok := m.Lookup("op_A0"); ok {
		t.Error("the absent op's name is still held")
	}
	if m.Len() != toolname.MaxEntries {
		t.Errorf("Len = %d", m.Len())
	}
}

func FuzzToolName(f *testing.F) {
	for _, s := range []string{"demo/echo", "a/b_c", "ü/ß", strings.Repeat("y", 80), ""} {
		f.Add(s, "other")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		m := toolname.New([]string{a, b})
		na, okA := m.Name(a, nil)
		nb, okB := m.Name(b, nil)
		if okA && !toolname.Valid(na) || okB && !toolname.Valid(nb) {
			t.Fatalf("invalid names %q %q", na, nb)
		}
		if okA && okB && a != b && na == nb {
			t.Fatalf("%q and %q share %q", a, b, na)
		}
		if h := toolname.Hashed(a); !toolname.Valid(h) {
			t.Fatalf("Hashed(%q) = %q invalid", a, h)
		}
	})
}
