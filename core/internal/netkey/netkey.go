// Package netkey maps remote addresses to the keys that connection and auth-failure
// limits count by: an IPv4 address, or the /64 prefix of an IPv6 address.
package netkey

import (
	"net"
	"net/netip"
)

// Key is the limit key of one address; the zero Key means "no IP address".
type Key struct{ prefix netip.Prefix }

// Valid reports whether the key came from an IP address.
func (k Key) Valid() bool { return k.prefix.IsValid() }

// String renders the address (IPv4) or the /64 prefix (IPv6).
func (k Key) String() string {
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

// FromIP returns the limit key of an IP; IPv4-mapped IPv6 counts as IPv4.
func FromIP(ip netip.Addr) Key {
	if !ip.IsValid() {
		return Key{}
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return Key{netip.PrefixFrom(ip, 32)}
	}
	p, _ := ip.Prefix(64)
	return Key{p}
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
