// Package upstream is the HTTP client imported operations reach their origin with
// (docs/http.md §5.2, §5.7): https, or http to a loopback host when allowed; no proxy from the
// environment; the dialer refuses link-local, cloud metadata, multicast and unspecified
// addresses after DNS; redirects only within the origin.
package upstream

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrRefused matches every refusal of this package (scheme, address, redirect).
var ErrRefused = errors.New("upstream: refused")

// MaxRedirects is how many same-origin redirects a request follows.
const MaxRedirects = 3

// CheckURL checks an origin's URL: https, or http to a loopback host with allowLoopbackHTTP.
func CheckURL(raw string, allowLoopbackHTTP bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%w: %q is not an absolute URL", ErrRefused, raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowLoopbackHTTP || !IsLoopbackHost(u.Hostname()) {
			return nil, fmt.Errorf("%w: %q: http is allowed only to a loopback host with allow_loopback_http (else https)", ErrRefused, raw)
		}
	default:
		return nil, fmt.Errorf("%w: %q: scheme must be https", ErrRefused, raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: %q: credentials in the URL", ErrRefused, raw)
	}
	return u, nil
}

// IsLoopbackHost reports localhost or a loopback IP literal.
func IsLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Origin is scheme://host[:port] of u.
func Origin(u *url.URL) string { return u.Scheme + "://" + u.Host }

// metadataV6 is the EC2 metadata service's IPv6 address.
var metadataV6 = net.ParseIP("fd00:ec2::254")

// refusedIP reports addresses a request may not reach unless the configured host is that literal.
func refusedIP(ip net.IP) bool {
	return ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() ||
		ip.IsUnspecified() || ip.Equal(metadataV6)
}

// dialControl checks each address the dialer connects to, after DNS: link-local (cloud
// metadata 169.254.169.254 among them), fd00:ec2::254, multicast and unspecified addresses are
// refused unless the origin's host is that very literal.
func dialControl(originHost string) func(network, address string, _ syscall.RawConn) error {
	literal := net.ParseIP(originHost)
	return func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		ip := net.ParseIP(host)
		if ip == nil || (refusedIP(ip) && !(literal != nil && literal.Equal(ip))) {
			return fmt.Errorf("%w: address %s is link-local, metadata, multicast or unspecified", ErrRefused, host)
		}
		return nil
	}
}

// Options configure a Client.
type Options struct {
	Origin          *url.URL      // the only origin requests and redirects may reach
	DialTimeout     time.Duration // dial and TLS handshake (default 10 s)
	MaxConnsPerHost int
}

// NewClient returns the client of one import: no proxy, the dialer's address rules, and
// redirects within Origin only (at most MaxRedirects).
func NewClient(o Options) *http.Client {
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	d := &net.Dialer{Timeout: o.DialTimeout, Control: dialControl(o.Origin.Hostname())}
	tr := &http.Transport{
		Proxy:                 nil, // never from the environment
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   o.DialTimeout,
		ResponseHeaderTimeout: 0, // bounded by each request's context
		MaxIdleConnsPerHost:   16,
		MaxConnsPerHost:       o.MaxConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	origin := Origin(o.Origin)
	return &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) > MaxRedirects {
			return fmt.Errorf("%w: more than %d redirects", ErrRefused, MaxRedirects)
		}
		if Origin(req.URL) != origin {
			return fmt.Errorf("%w: redirect to another origin (%s)", ErrRefused, Origin(req.URL))
		}
		return nil
	}}
}

// Close releases the client's idle connections.
func Close(c *http.Client) {
	if t, ok := c.Transport.(*http.Transport); ok {
		t.CloseIdleConnections()
	}
}

// Refused reports an error of these rules anywhere in err's chain (url.Error wraps them).
func Refused(err error) bool { return errors.Is(err, ErrRefused) }
