package identity_test

import (
	"fmt"

	"github.com/alkdev/alknet/core/identity"
)

// A ticket carries a node's fingerprint and addresses in one string a client can dial.
func ExampleParseTicket() {
	key, _ := identity.Generate()
	t := identity.Ticket{Fingerprint: key.Fingerprint(), QUIC: []string{"127.0.0.1:7443"}, TCP: []string{"127.0.0.1:7443"}}
	s, _ := t.Encode()

	parsed, err := identity.ParseTicket(s)
	fmt.Println(err, parsed.Fingerprint == key.Fingerprint(), parsed.QUIC, parsed.TCP)
	damaged := []byte(s)
	damaged[len(damaged)-2] ^= 1 // one character changed: the checksum fails
	_, err = identity.ParseTicket(string(damaged))
	fmt.Println(err != nil)
	// Output:
	// <nil> true [127.0.0.1:7443] [127.0.0.1:7443]
	// true
}
