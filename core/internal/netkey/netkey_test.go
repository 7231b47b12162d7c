package netkey

import (
	"net"
	"testing"
)

func TestFromAddr(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 1}, "203.0.113.7"},
		{&net.UDPAddr{IP: net.ParseIP("::ffff:203.0.113.7"), Port: 1}, "203.0.113.7"},
		{&net.UDPAddr{IP: net.ParseIP("2001:db8:1:2:aaaa::1"), Port: 1}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:bbbb::9"), Port: 1}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:3::1"), Port: 1}, "2001:db8:1:3::/64"},
		{nil, ""},
		{&net.UnixAddr{Name: "/tmp/x", Net: "unix"}, ""},
	}
	for _, tt := range tests {
		if got := FromAddr(tt.addr).String(); got != tt.want {
			t.Errorf("FromAddr(%v) = %q, want %q", tt.addr, got, tt.want)
		}
	}
	if FromAddr(nil).Valid() {
		t.Fatal("nil address gave a valid key")
	}
	a := FromAddr(&net.UDPAddr{IP: net.ParseIP("2001:db8::1")})
	b := FromAddr(&net.TCPAddr{IP: net.ParseIP("2001:db8::ffff:1")})
	if a != b {
		t.Fatal("two addresses in one /64 must share a key")
	}
}

func TestHost(t *testing.T) {
	if got := Host(&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 9}); got != "2001:db8::1" {
		t.Fatalf("Host = %q", got)
	}
	if Host(nil) != "" {
		t.Fatal("Host(nil) should be empty")
	}
}
