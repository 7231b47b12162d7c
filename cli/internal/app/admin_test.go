package app

import (
	"strings"
	"testing"
)

func TestRemoveBlock(t *testing.T) {
	src := `# keep me
[node]
listen = ["0.0.0.0:7443"]

[[peer]]
peer_id = "a"
scopes = ["x"]

# about b
[[peer]]
peer_id="b"
scopes = ["y"]

[[apikey]]
prefix = "alk_abcd"
`
	out, ok := removeBlock([]byte(src), "peer", "peer_id", "b")
	if !ok || strings.Contains(string(out), `"b"`) || !strings.Contains(string(out), "# keep me") || !strings.Contains(string(out), `peer_id = "a"`) || !strings.Contains(string(out), "alk_abcd") {
		t.Fatalf("remove b:\n%s", out)
	}
	if _, ok := removeBlock([]byte(src), "peer", "peer_id", "zzz"); ok {
		t.Fatal("removed a missing peer")
	}
	out, ok = removeBlock([]byte(src), "apikey", "prefix", "alk_abcd")
	if !ok || strings.Contains(string(out), "alk_abcd") || !strings.Contains(string(out), `peer_id="b"`) {
		t.Fatalf("remove key:\n%s", out)
	}
}
