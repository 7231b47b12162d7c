//go:build cgo && !noiroh

package app

import (
	"slices"
	"testing"

	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/iroh"
)

// A client endpoint uses only what the ticket names: its relay, else n0's lookup for a bare
// key (nothing else to go on), else no relay at all (spec iroh.md §8.4).
func TestClientRelay(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    *identity.IrohAddr
		mode iroh.RelayMode
		urls []string
	}{
		{"relay", &identity.IrohAddr{RelayURL: "https://r.example/", Addrs: []string{"203.0.113.7:1"}}, iroh.RelayCustom, []string{"https://r.example/"}},
		{"bare key", &identity.IrohAddr{}, iroh.RelayN0, nil},
		{"addresses only", &identity.IrohAddr{Addrs: []string{"127.0.0.1:1"}}, iroh.RelayDisabled, nil},
		{"no iroh records", nil, iroh.RelayDisabled, nil},
	} {
		mode, urls := clientRelay(identity.Ticket{Iroh: tc.a})
		if mode != tc.mode || !slices.Equal(urls, tc.urls) {
			t.Errorf("%s: %s %v, want %s %v", tc.name, mode, urls, tc.mode, tc.urls)
		}
	}
}
