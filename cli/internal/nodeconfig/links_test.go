package nodeconfig

import (
	"strings"
	"testing"

	"github.com/alkdev/alknet/core/identity"
)

func testTicket(t *testing.T, fp string) string {
	t.Helper()
	s, err := identity.Ticket{Fingerprint: fp, QUIC: []string{"127.0.0.1:7443"}, TCP: []string{"127.0.0.1:7443"}}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Forwarding checklist 40: serve --check rejects every invalid link case, naming the key.
func TestLinkConfigRejects(t *testing.T) {
	fpA, fpB := "ed25519:"+strings.Repeat("aa", 32), "ed25519:"+strings.Repeat("bb", 32)
	tA, tB := testTicket(t, fpA), testTicket(t, fpB)
	for _, tc := range []struct {
		name, toml, want string
	}{
		{"bad ticket", `[[import]]` + "\npeer_id = \"w1\"\nticket = \"alk1nope\"\n", "import[0].ticket"},
		{"bad peer id", `[[import]]` + "\npeer_id = \"w 1\"\nticket = \"" + tA + "\"\n", "import[0].peer_id"},
		{"duplicate peer id", "[[import]]\npeer_id = \"w1\"\nticket = \"" + tA + "\"\n[[uplink]]\npeer_id = \"w1\"\nticket = \"" + tB + "\"\n", "uplink[0].peer_id"},
		{"two links to one fingerprint", "[[import]]\npeer_id = \"w1\"\nticket = \"" + tA + "\"\n[[import]]\npeer_id = \"w2\"\nticket = \"" + tA + "\"\n", "import[1].ticket"},
		{"peer without the ticket's key", "[[peer]]\npeer_id = \"w1\"\nfingerprints = [\"" + fpB + "\"]\nscopes = []\n[[import]]\npeer_id = \"w1\"\nticket = \"" + tA + "\"\n", "fingerprints lack"},
		{"bad transport", "[[import]]\npeer_id = \"w1\"\nticket = \"" + tA + "\"\ntransport = \"udp\"\n", "import[0].transport"},
		{"bad prefix", "[[import]]\npeer_id = \"w1\"\nticket = \"" + tA + "\"\nprefix = \"a/b\"\n", "import[0].prefix"},
		{"bad allow", "[[import]]\npeer_id = \"w1\"\nticket = \"" + tA + "\"\nallow = [\"*x\"]\n", "import[0].allow[0]"},
		{"bad alias", "[[import]]\npeer_id = \"w1\"\nticket = \"" + tA + "\"\nalias = { \"demo/echo\" = \"/x\" }\n", "import[0].alias"},
		{"unknown token capability", "[[import]]\npeer_id = \"w1\"\nticket = \"" + tA + "\"\nauth_token_capability = \"token:w1\"\n", "import[0].auth_token_capability"},
		{"hub without scope", "[hub]\nexpose = true\n", "hub.import_scope"},
		{"anyone without meaning it", "[hub]\nimport_scope = \"w\"\nexpose = true\nrequired_scopes = []\n", "hub.required_scopes"},
		{"refresh too short", "[[import]]\npeer_id = \"w1\"\nticket = \"" + tA + "\"\nrefresh = \"100ms\"\n", "import[0].refresh"},
		{"hops", "[call]\nmax_forward_hops = 65\n", "max_forward_hops"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("n.toml", []byte(tc.toml))
			if err != nil {
				t.Fatal(err)
			}
			err = f.Validate("n.toml", nil, "127.0.0.1:0")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
	// The valid forms pass, allow_anonymous included.
	ok := "[[import]]\npeer_id = \"w1\"\nticket = \"" + tA + "\"\nprefix = \"\"\nallow = [\"demo/*\", \"x/y\"]\nexpose = true\nrequired_scopes = []\nallow_anonymous = true\nrefresh = \"0s\"\n" +
		"[[uplink]]\npeer_id = \"hub\"\nticket = \"" + tB + "\"\n[hub]\nimport_scope = \"worker\"\n[call]\nmax_forward_hops = 3\ntrust_forwarded_for = [\"hub\"]\n"
	f, err := Parse("n.toml", []byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Validate("n.toml", nil, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	s := f.Imports[0].Settings()
	if s.Prefix != "" || s.Refresh != 0 || s.SubscriptionBuffer != MinLinkSubscriptionBuffer {
		t.Fatalf("settings %+v", s)
	}
	allow := AllowFunc(s.Allow)
	if !allow("demo/echo") || !allow("x/y") || allow("x/z") || allow("demox/a") {
		t.Fatal("allow patterns")
	}
	if l := f.CallLimits(); l.MaxForwardHops != 3 || l.TrustForwardedFor[0] != "hub" {
		t.Fatalf("call limits %+v", l)
	}
}
