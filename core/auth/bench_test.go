package auth

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkPolicyFromToken measures a per-request token lookup against 100 peers and 100 keys.
func BenchmarkPolicyFromToken(b *testing.B) {
	var peers []PeerEntry
	var keys []APIKeyEntry
	for i := range 100 {
		peers = append(peers, PeerEntry{PeerID: fmt.Sprintf("p%d", i), Scopes: []string{"s"}, AuthTokenHash: HashToken(fmt.Sprintf("peer-token-%d", i)), Enabled: true})
		keys = append(keys, APIKeyEntry{Prefix: fmt.Sprintf("alk_%04d", i), Hash: HashToken(fmt.Sprintf("alk_%04d-rest", i)), Scopes: []string{"s"}})
	}
	p, err := NewPolicy(peers, keys, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := p.FromToken(ctx, "alk_0050-rest"); !ok {
			b.Fatal("not resolved")
		}
	}
}
