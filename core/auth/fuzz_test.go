package auth

import (
	"context"
	"testing"
	"time"
)

// FuzzNewPolicy builds policies from arbitrary strings: validation must never panic, and a
// policy that builds must answer lookups for its own entries without panicking.
func FuzzNewPolicy(f *testing.F) {
	f.Add("alice", fpA, "admin", vectorHash, "alk_test", vectorHash, true)
	f.Add("", "", "", "", "", "", false)
	f.Add("alk_x", "ED25519:00", "", "sha256:", "alk_", "x", true)
	f.Fuzz(func(t *testing.T, peerID, fp, scope, tokenHash, prefix, keyHash string, enabled bool) {
		peers := []PeerEntry{{PeerID: peerID, Fingerprints: []string{fp}, Scopes: []string{scope}, AuthTokenHash: tokenHash, Enabled: enabled}}
		keys := []APIKeyEntry{{Prefix: prefix, Hash: keyHash, Scopes: []string{scope}, ExpiresAt: time.Unix(1, 0)}}
		p, err := NewPolicy(peers, keys, nil)
		if err != nil {
			return
		}
		ctx := context.Background()
		id, ok := p.FromFingerprint(ctx, fp)
		if ok != enabled || (ok && id.ID != peerID) {
			t.Fatalf("FromFingerprint(%q) = %+v, %v", fp, id, ok)
		}
		_, _ = p.FromToken(ctx, prefix+peerID)
		_ = p.Revalidate(ctx, id)
	})
}
