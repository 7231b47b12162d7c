package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/alkdev/alknet/core/identity"
)

// PeerEntry is one known peer. File decoders must default an absent Enabled to true.
type PeerEntry struct {
	PeerID, DisplayName  string
	Fingerprints, Scopes []string
	AuthTokenHash        string // "" or "sha256:<64 lowercase hex>"
	Resources            map[string][]string
	Enabled              bool
}

// APIKeyEntry is one API key, stored by prefix and hash only.
type APIKeyEntry struct {
	Prefix, Hash string // token's first 8 characters; "sha256:<hex>" of the token
	Scopes       []string
	Description  string
	ExpiresAt    time.Time // zero: never
}

// ErrInvalidPolicy matches every validation error of NewPolicy.
var ErrInvalidPolicy = errors.New("auth: invalid policy")

const maxPeerIDLen = 128

// Policy is an immutable, validated, indexed snapshot of peers and API keys.
type Policy struct {
	peers  []PeerEntry    // deep copies, config order
	byFP   map[string]int // fingerprint → index into peers (enabled or not)
	byID   map[string]int
	keys   map[string]APIKeyEntry // prefix → entry
	now    func() time.Time
	hashed []int // indexes of enabled peers with a token hash, config order
}

var (
	_ IdentityProvider = (*Policy)(nil)
	_ Revalidator      = (*Policy)(nil)
)

// NewPolicy validates and indexes peers and keys; every problem is reported at once.
// now nil means time.Now.
func NewPolicy(peers []PeerEntry, keys []APIKeyEntry, now func() time.Time) (*Policy, error) {
	if now == nil {
		now = time.Now
	}
	p := &Policy{
		byFP: make(map[string]int), byID: make(map[string]int),
		keys: make(map[string]APIKeyEntry, len(keys)), now: now,
	}
	var errs []error
	bad := func(path, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, a...)))
	}
	hashes := make(map[string]string)
	for i, pe := range peers {
		path := fmt.Sprintf("peers[%d]", i)
		switch {
		case pe.PeerID == "":
			bad(path+".peer_id", "empty")
		case len(pe.PeerID) > maxPeerIDLen:
			bad(path+".peer_id", "longer than %d bytes", maxPeerIDLen)
		case !validPeerID(pe.PeerID):
			bad(path+".peer_id", "%q may contain only A-Z a-z 0-9 . _ @ -", pe.PeerID)
		case strings.HasPrefix(pe.PeerID, TokenPrefix):
			bad(path+".peer_id", "%q must not start with %q (reserved for API keys)", pe.PeerID, TokenPrefix)
		}
		if _, dup := p.byID[pe.PeerID]; dup && pe.PeerID != "" {
			errs = append(errs, fmt.Errorf("%s.peer_id: duplicate peer_id: %s", path, pe.PeerID))
		} else {
			p.byID[pe.PeerID] = i
		}
		for j, fp := range pe.Fingerprints {
			fpath := fmt.Sprintf("%s.fingerprints[%d]", path, j)
			if err := identity.CheckFingerprint(fp); err != nil {
				bad(fpath, "%v", err)
				continue
			}
			if other, dup := p.byFP[fp]; dup {
				bad(fpath, "%s is already listed by peer %q", fp, peers[other].PeerID)
				continue
			}
			p.byFP[fp] = i
		}
		if pe.AuthTokenHash != "" {
			if !validHash(pe.AuthTokenHash) {
				bad(path+".auth_token_hash", "want \"sha256:\" and 64 lowercase hex digits")
			} else if other, dup := hashes[pe.AuthTokenHash]; dup {
				bad(path+".auth_token_hash", "same token hash as peer %q", other)
			} else {
				hashes[pe.AuthTokenHash] = pe.PeerID
				if pe.Enabled {
					p.hashed = append(p.hashed, i)
				}
			}
		}
		checkScopes(path, pe.Scopes, bad)
		p.peers = append(p.peers, pe.Clone())
	}
	for i, k := range keys {
		path := fmt.Sprintf("api_keys[%d]", i)
		if len(k.Prefix) != APIKeyPrefixLen || !strings.HasPrefix(k.Prefix, TokenPrefix) {
			bad(path+".prefix", "want %d characters starting with %q", APIKeyPrefixLen, TokenPrefix)
		} else if _, dup := p.keys[k.Prefix]; dup {
			bad(path+".prefix", "duplicate prefix %s", k.Prefix)
		}
		if !validHash(k.Hash) {
			bad(path+".hash", "want \"sha256:\" and 64 lowercase hex digits")
		}
		checkScopes(path, k.Scopes, bad)
		k = k.Clone()
		if _, dup := p.keys[k.Prefix]; !dup {
			p.keys[k.Prefix] = k
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, errors.Join(errs...))
	}
	return p, nil
}

// Clone returns a deep copy.
func (k APIKeyEntry) Clone() APIKeyEntry {
	k.Scopes = slices.Clone(k.Scopes)
	return k
}

func checkScopes(path string, scopes []string, bad func(path, format string, a ...any)) {
	for j, s := range scopes {
		if s == "" {
			bad(fmt.Sprintf("%s.scopes[%d]", path, j), "empty scope")
		}
	}
}

func validPeerID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '@' || c == '-') {
			return false
		}
	}
	return true
}

// Clone returns a deep copy.
func (pe PeerEntry) Clone() PeerEntry {
	pe.Fingerprints = slices.Clone(pe.Fingerprints)
	pe.Scopes = slices.Clone(pe.Scopes)
	if pe.Resources != nil {
		r := make(map[string][]string, len(pe.Resources))
		for k, v := range pe.Resources {
			r[k] = slices.Clone(v)
		}
		pe.Resources = r
	}
	return pe
}

func peerIdentity(pe *PeerEntry) Identity {
	return Identity{ID: pe.PeerID, Scopes: pe.Scopes, Resources: pe.Resources}.Clone()
}

// FromFingerprint resolves the enabled peer listing fp.
func (p *Policy) FromFingerprint(_ context.Context, fp string) (Identity, bool) {
	i, ok := p.byFP[fp]
	if !ok || !p.peers[i].Enabled {
		return Identity{}, false
	}
	return peerIdentity(&p.peers[i]), true
}

// FromToken resolves a peer token (peers first, config order) or an unexpired API key.
func (p *Policy) FromToken(_ context.Context, token string) (Identity, bool) {
	if token == "" || len(token) > MaxTokenLen {
		return Identity{}, false
	}
	h := HashToken(token)
	for _, i := range p.hashed {
		if ctEqual(h, p.peers[i].AuthTokenHash) {
			return peerIdentity(&p.peers[i]), true
		}
	}
	if len(token) < APIKeyPrefixLen || !strings.HasPrefix(token, TokenPrefix) {
		return Identity{}, false
	}
	k, ok := p.keys[token[:APIKeyPrefixLen]]
	if !ok || !ctEqual(h, k.Hash) || p.expired(k) {
		return Identity{}, false
	}
	return Identity{ID: k.Prefix, Scopes: slices.Clone(k.Scopes)}, true
}

func (p *Policy) expired(k APIKeyEntry) bool {
	return !k.ExpiresAt.IsZero() && !p.now().Before(k.ExpiresAt)
}

// Revalidate reports whether id is still what the policy would grant.
func (p *Policy) Revalidate(_ context.Context, id Identity) bool {
	if i, ok := p.byID[id.ID]; ok && p.peers[i].Enabled {
		return peerIdentity(&p.peers[i]).Equal(id)
	}
	if k, ok := p.keys[id.ID]; ok && !p.expired(k) {
		return Identity{ID: k.Prefix, Scopes: k.Scopes}.Equal(id)
	}
	return false
}
