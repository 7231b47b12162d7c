// Package netkey maps remote addresses to the keys that connection and auth-failure
// limits count by: an IPv4 address, or the /64 prefix of an IPv6 address.
package netkey

import (
	"net"
	"net/netip"
)

// Key is the limit key of one address, or of a peer's key fingerprint when its connection has
// no IP address (iroh through a relay); the zero Key means "neither".
type Key struct {
	prefix netip.Prefix
	fp     string
}

// Valid reports whether the key came from an IP address or a fingerprint.
func (k Key) Valid() bool { return k.prefix.IsValid() || k.fp != "" }

// IsIP reports a key of an IP address (connection limits per IP count only these).
func (k Key) IsIP() bool { return k.prefix.IsValid() }

// String renders the address (IPv4), the /64 prefix (IPv6) or the fingerprint.
func (k Key) String() string {
	if k.fp != "" {
		return k.fp
	}
	if !k.prefix.IsValid() {
		return ""
	}
	if k.prefix.Addr().Is4() {
		return k.prefix.Addr().String()
	}
	return k.prefix.String()
}

// FromAddr returns the limit key of a net.Addr (TCP, UDP, IP or anything whose String is
// host:port); addresses without an IP give the zero Key.
func FromAddr(a net.Addr) Key {
	if a == nil {
		return Key{}
	}
	var ip netip.Addr
	switch v := a.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(v.IP)
	case *net.UDPAddr:
		ip, _ = netip.AddrFromSlice(v.IP)
	case *net.IPAddr:
		ip, _ = netip.AddrFromSlice(v.IP)
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return Key{}
		}
		ip = ap.Addr()
	}
	return FromIP(ip)
}

// FromFingerprint returns the limit key of a peer known only by its key fingerprint. Keys are
// free to mint: this bounds noise from one key, not an attacker (tokens are the barrier).
func FromFingerprint(fp string) Key {
	if fp == "" {
		return Key{}
	}
	return Key{fp: fp}
}

// Of returns the failure-limit key of a peer: its address's when it has an IP, else its
// fingerprint's.
func Of(a net.Addr, fingerprint string) Key {
	if k := FromAddr(a); k.Valid() {
		return k
	}
	return FromFingerprint(fingerprint)
}

// FromIP returns the limit key of an IP; IPv4-mapped IPv6 counts as IPv4.
func FromIP(ip netip.Addr) Key {
	if !ip.IsValid() {
		return Key{}
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return Key{prefix: netip.PrefixFrom(ip, 32)}
	}
	p, _ := ip.Prefix(64)
	return Key{prefix: p}
}

// Host returns the IP of a (without port, IPv6 unbracketed), or "" if it has none.
func Host(a net.Addr) string {
	if a == nil {
		return ""
	}
	switch v := a.(type) {
	case *net.TCPAddr:
		return v.IP.String()
	case *net.UDPAddr:
		return v.IP.String()
	case *net.IPAddr:
		return v.IP.String()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return ""
	}
	return ap.Addr().String()
}
