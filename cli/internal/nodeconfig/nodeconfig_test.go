package nodeconfig

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	f, err := Parse("n.toml", []byte(`
[node]
listen = ["127.0.0.1:0"]
drain_timeout = "5s"
[node.limits]
idle_timeout = "1m"
[call]
default_timeout = "2s"
[[peer]]
peer_id = "a"
fingerprints = ["ed25519:d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"]
scopes = ["x"]
[[peer]]
peer_id = "b"
fingerprints = []
scopes = ["y"]
enabled = false
`))
	if err != nil {
		t.Fatal(err)
	}
	d := f.Dynamic()
	if !d.Peers[0].Enabled || d.Peers[1].Enabled {
		t.Fatal("an absent enabled must read as true, an explicit false as false")
	}
	if f.Static(nil, "x:1").DrainTimeout != 5*time.Second || f.CoreLimits().IdleTimeout != time.Minute || f.CallLimits().RequestTimeout != 2*time.Second {
		t.Fatal("durations")
	}
	if err := f.Validate("n.toml", nil, "0.0.0.0:7443"); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ src, want string }{
		"unknown key":  {"[node]\nlisten = []\nlistne = []\n", "n.toml:3: unknown key node.listne"},
		"bad duration": {"[node]\ndrain_timeout = \"soon\"\n", "n.toml:2"},
		"bad type":     {"[node]\nlisten = 5\n", "n.toml:2"},
	} {
		_, err := Parse("n.toml", []byte(tc.src))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	bad, _ := Parse("n.toml", []byte("[node]\ntransports = [\"udp\"]\nadvertise = [\"nohost\"]\n[[capability]]\nname = \"\"\n"))
	err = bad.Validate("n.toml", nil, "0.0.0.0:7443")
	for _, want := range []string{"node.transports[0]", "node.advertise[0]", "capability[0].name"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validation lacks %s: %v", want, err)
		}
	}
}
