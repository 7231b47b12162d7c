package nodeconfig

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core/identity"
)

// MinLinkSubscriptionBuffer is the smallest per-subscription buffer of a link (a forwarded
// subscription must not end "too slow" for a short burst).
const MinLinkSubscriptionBuffer = 4096

// DefaultRefresh is how often an import re-reads its peer's catalogue.
const DefaultRefresh = Duration(60 * time.Second)

// Import is one [[import]]: dial a peer, keep the link, import its operations.
type Import struct {
	PeerID              string            `toml:"peer_id"`
	Ticket              string            `toml:"ticket"`
	Transport           string            `toml:"transport"` // quic | tcp | auto (default)
	Prefix              *string           `toml:"prefix"`    // absent = peer_id; "" = none
	Allow               []string          `toml:"allow"`     // remote names; "x/*" = every name starting "x/"; absent = all
	Alias               map[string]string `toml:"alias"`
	Expose              bool              `toml:"expose"`
	RequiredScopes      *[]string         `toml:"required_scopes"` // absent = the remote's access control
	AllowAnonymous      bool              `toml:"allow_anonymous"`
	AuthTokenCapability string            `toml:"auth_token_capability"`
	Refresh             *Duration         `toml:"refresh"` // absent = 60s; 0 = off
	SubscriptionBuffer  int               `toml:"subscription_buffer"`
}

// Uplink is one [[uplink]]: dial a hub and serve this node's operations over the link.
type Uplink struct {
	PeerID             string `toml:"peer_id"`
	Ticket             string `toml:"ticket"`
	Transport          string `toml:"transport"`
	SubscriptionBuffer int    `toml:"subscription_buffer"`
}

// Hub is [hub]: import inbound links whose identity holds ImportScope.
type Hub struct {
	ImportScope        string    `toml:"import_scope"`
	Expose             bool      `toml:"expose"`
	Allow              []string  `toml:"allow"`
	RequiredScopes     *[]string `toml:"required_scopes"`
	AllowAnonymous     bool      `toml:"allow_anonymous"`
	Refresh            *Duration `toml:"refresh"`
	SubscriptionBuffer int       `toml:"subscription_buffer"`
}

// ImportSettings is what an importer needs of an [[import]] or of [hub].
type ImportSettings struct {
	Prefix             string
	Allow              []string
	Alias              map[string]string
	Expose             bool
	RequiredScopes     *[]string
	TokenCapability    string
	Refresh            time.Duration // 0 = off
	SubscriptionBuffer int
}

// Settings returns the import settings of an [[import]].
func (im Import) Settings() ImportSettings {
	prefix := im.PeerID
	if im.Prefix != nil {
		prefix = *im.Prefix
	}
	return ImportSettings{Prefix: prefix, Allow: im.Allow, Alias: im.Alias, Expose: im.Expose, RequiredScopes: im.RequiredScopes,
		TokenCapability: im.AuthTokenCapability, Refresh: refreshOf(im.Refresh), SubscriptionBuffer: linkBuffer(im.SubscriptionBuffer)}
}

// Settings returns the import settings of [hub] for a link whose identity is id (the prefix).
func (h Hub) Settings(id string) ImportSettings {
	return ImportSettings{Prefix: id, Allow: h.Allow, Expose: h.Expose, RequiredScopes: h.RequiredScopes,
		Refresh: refreshOf(h.Refresh), SubscriptionBuffer: linkBuffer(h.SubscriptionBuffer)}
}

func refreshOf(d *Duration) time.Duration {
	if d == nil {
		return time.Duration(DefaultRefresh)
	}
	return time.Duration(*d)
}

// LinkBuffer is a link's per-subscription buffer: at least MinLinkSubscriptionBuffer.
func LinkBuffer(n int) int { return linkBuffer(n) }

func linkBuffer(n int) int { return max(n, MinLinkSubscriptionBuffer) }

// AllowFunc turns an allow list into ImportConfig.Filter (nil = all).
func AllowFunc(allow []string) func(string) bool {
	if allow == nil {
		return nil
	}
	return func(name string) bool {
		for _, a := range allow {
			if p, ok := strings.CutSuffix(a, "*"); ok && strings.HasPrefix(name, p) || a == name {
				return true
			}
		}
		return false
	}
}

// validateLinks checks [[import]], [[uplink]] and [hub], naming each bad key.
func (f *File) validateLinks() []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	ids := map[string]string{}
	fps := map[string]string{}
	peers := map[string][]string{}
	for _, p := range f.Peers {
		peers[p.PeerID] = p.Fingerprints
	}
	caps := map[string]bool{}
	for _, c := range f.Capability {
		caps[c.Name] = true
	}
	link := func(key, id, ticket, transport string) {
		if id == "" || len(id) > 128 || !validLinkID(id) {
			bad("%s.peer_id: %q: want 1-128 of [A-Za-z0-9._@-]", key, id)
		} else if other, dup := ids[id]; dup {
			bad("%s.peer_id: %q is also %s's", key, id, other)
		}
		ids[id] = key
		tk, err := identity.ParseTicket(ticket)
		if err != nil {
			bad("%s.ticket: %v", key, err)
		} else {
			if other, dup := fps[tk.Fingerprint]; dup {
				bad("%s.ticket: %s is also %s's peer", key, tk.Fingerprint, other)
			}
			fps[tk.Fingerprint] = key
			if fpsOf, ok := peers[id]; ok && !slices.Contains(fpsOf, tk.Fingerprint) {
				bad("%s.peer_id: %q is a [[peer]] whose fingerprints lack the ticket's %s", key, id, tk.Fingerprint)
			}
		}
		switch transport {
		case "", "auto", "quic", "tcp":
		default:
			bad("%s.transport: %q: want quic, tcp or auto", key, transport)
		}
	}
	checkImport := func(key string, s ImportSettings, refresh *Duration, anon bool) {
		if s.Prefix != "" && (!validLinkID(s.Prefix) || strings.Contains(s.Prefix, "/")) {
			bad("%s.prefix: %q: want [A-Za-z0-9._@-]", key, s.Prefix)
		}
		for i, a := range s.Allow {
			name := strings.TrimSuffix(a, "*")
			if name == "" || strings.Contains(name, "*") || strings.HasPrefix(name, "/") {
				bad("%s.allow[%d]: %q: want a name or a prefix ending in /*", key, i, a)
			}
		}
		for remote, local := range s.Alias {
			if !validOpName(remote) || !validOpName(local) {
				bad("%s.alias: %q = %q: both must be operation names", key, remote, local)
			}
		}
		if s.TokenCapability != "" && !caps[s.TokenCapability] {
			bad("%s.auth_token_capability: %q is not a [[capability]]", key, s.TokenCapability)
		}
		if s.Expose && s.RequiredScopes != nil && len(*s.RequiredScopes) == 0 && !anon {
			bad("%s.required_scopes: [] with expose = true lets anyone call the imports: set allow_anonymous = true to mean it", key)
		}
		if refresh != nil && *refresh > 0 && time.Duration(*refresh) < time.Second {
			bad("%s.refresh: %v: want 0 (off) or at least 1s", key, time.Duration(*refresh))
		}
	}
	for i, im := range f.Imports {
		key := fmt.Sprintf("import[%d]", i)
		link(key, im.PeerID, im.Ticket, im.Transport)
		checkImport(key, im.Settings(), im.Refresh, im.AllowAnonymous)
	}
	for i, up := range f.Uplinks {
		link(fmt.Sprintf("uplink[%d]", i), up.PeerID, up.Ticket, up.Transport)
	}
	if f.Hub != nil {
		if f.Hub.ImportScope == "" {
			bad("hub.import_scope: required when [hub] is present")
		}
		checkImport("hub", f.Hub.Settings("x"), f.Hub.Refresh, f.Hub.AllowAnonymous)
	}
	if h := f.Call.MaxForwardHops; h != 0 && (h < 1 || h > call.MaxForwardHopsCap) {
		bad("call.max_forward_hops: %d: want 1-%d", h, call.MaxForwardHopsCap)
	}
	return errs
}

func validLinkID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '@' || c == '-') {
			return false
		}
	}
	return s != ""
}

func validOpName(n string) bool {
	return n != "" && !strings.HasPrefix(n, "/") && !strings.HasSuffix(n, "/") && !strings.Contains(n, "//")
}

// LinkSections describes the link sections for restart checks.
func (f *File) LinkSections() string { return fmt.Sprint(f.Imports, f.Uplinks, f.Hub) }
