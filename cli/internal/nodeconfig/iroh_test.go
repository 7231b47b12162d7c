package nodeconfig

import (
	"strings"
	"testing"
)

// [iroh] validation (spec iroh.md §8.1): every bad value is named by its key.
func TestIrohValidate(t *testing.T) {
	good, err := Parse("n.toml", []byte(`
[iroh]
enabled = true
relay = "custom"
relay_urls = ["https://relay.example.net/", "http://127.0.0.1:3340"]
bind = ["0.0.0.0:11204", "[::]:11204"]
advertise = ["203.0.113.7:11204"]
log_level = "debug"
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := good.Validate("n.toml", nil, "0.0.0.0:7443"); err != nil {
		t.Fatal(err)
	}
	if (Iroh{}).RelayMode() != "n0" {
		t.Fatal("the default relay mode is n0")
	}
	for name, tc := range map[string]struct{ src, want string }{
		"bad mode":            {"[iroh]\nrelay = \"nope\"\n", "iroh.relay: \"nope\""},
		"custom without url":  {"[iroh]\nrelay = \"custom\"\n", "iroh.relay_urls: relay = \"custom\" needs 1-8 URLs"},
		"urls without custom": {"[iroh]\nrelay_urls = [\"https://r.example/\"]\n", "iroh.relay_urls: only with relay = \"custom\""},
		"bad url":             {"[iroh]\nrelay = \"custom\"\nrelay_urls = [\"http://relay.example/\"]\n", "iroh.relay_urls[0]"},
		"dns bind":            {"[iroh]\nbind = [\"localhost:1\"]\n", "iroh.bind[0]"},
		"two v4 binds":        {"[iroh]\nbind = [\"127.0.0.1:1\", \"0.0.0.0:2\"]\n", "iroh.bind: at most one address per family"},
		"bad advertise":       {"[iroh]\nadvertise = [\"example.net:1\"]\n", "iroh.advertise[0]"},
		"bad level":           {"[iroh]\nlog_level = \"loud\"\n", "iroh.log_level"},
		"not key mode":        {"[tls]\nmode = \"acme\"\nacme_domains = [\"n.example\"]\nacme_email = \"a@n.example\"\n[iroh]\nenabled = true\n", "iroh.enabled: iroh presents the node's key"},
	} {
		f, err := Parse("n.toml", []byte(tc.src))
		if err == nil {
			err = f.Validate("n.toml", nil, "0.0.0.0:7443")
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
