package upstream

import (
	"errors"
	"net/url"
	"testing"
)

// docs/http.md §5.2 (checklist 19): the dialer refuses what a name may resolve to.
func TestDialControl(t *testing.T) {
	for _, tc := range []struct {
		origin, addr string
		refused      bool
	}{
		{"api.example.com", "169.254.169.254:80", true},
		{"api.example.com", "[fd00:ec2::254]:80", true},
		{"api.example.com", "[fe80::1]:443", true},
		{"api.example.com", "224.0.0.1:443", true},
		{"api.example.com", "0.0.0.0:443", true},
		{"api.example.com", "93.184.216.34:443", false},
		{"api.example.com", "127.0.0.1:443", false},
		{"169.254.169.254", "169.254.169.254:80", false}, // the configured literal itself
	} {
		err := dialControl(tc.origin)("tcp", tc.addr, nil)
		if got := errors.Is(err, ErrRefused); got != tc.refused {
			t.Errorf("%s via %s: refused=%v, want %v (%v)", tc.addr, tc.origin, got, tc.refused, err)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url      string
		loopback bool
		ok       bool
	}{
		{"https://api.example.com/v1", false, true},
		{"http://api.example.com", true, false},
		{"http://127.0.0.1:8080", true, true},
		{"http://127.0.0.1:8080", false, false},
		{"http://localhost", true, true},
		{"ftp://x", true, false},
		{"https://user:pw@api.example.com", false, false},
		{"/relative", false, false},
	} {
		_, err := CheckURL(tc.url, tc.loopback)
		if (err == nil) != tc.ok {
			t.Errorf("%s (loopback %v): %v", tc.url, tc.loopback, err)
		}
	}
	u, _ := url.Parse("https://a.example:8443/x?y")
	if Origin(u) != "https://a.example:8443" {
		t.Fatal(Origin(u))
	}
}
