package upstream

import (
	"errors"
	"net/http"
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

// docs/http.md §5.2 (checklist 21): no proxy from the environment, ever (a loopback target
// would not show it: net/http never proxies loopback).
func TestNoEnvironmentProxy(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://proxy.example:3128")
	u, _ := url.Parse("https://api.example.com")
	c := NewClient(Options{Origin: u})
	tr, ok := c.Transport.(*http.Transport)
	if !ok || tr.Proxy != nil {
		t.Fatal("the client would use a proxy from the environment")
	}
	// Redirects: within the origin only, at most MaxRedirects.
	other, _ := http.NewRequest("GET", "https://evil.example/x", nil)
	if err := c.CheckRedirect(other, []*http.Request{{URL: u}}); !errors.Is(err, ErrRefused) {
		t.Fatalf("a redirect to another origin: %v", err)
	}
	same, _ := http.NewRequest("GET", "https://api.example.com/y", nil)
	if err := c.CheckRedirect(same, []*http.Request{{URL: u}}); err != nil {
		t.Fatalf("a same-origin redirect: %v", err)
	}
	if err := c.CheckRedirect(same, make([]*http.Request, MaxRedirects+1)); !errors.Is(err, ErrRefused) {
		t.Fatalf("a 4th redirect: %v", err)
	}
}
