package nodeconfig

import (
	"fmt"
	"net/url"

	"github.com/alkdev/alknet/adapters/gateway"
)

// HTTP is the [http] section (restart-only): the HTTP gateway (docs/http.md).
type HTTP struct {
	Enabled                bool     `toml:"enabled"`         // h2 and http/1.1 on every TCP+TLS listener
	LoopbackListen         string   `toml:"loopback_listen"` // plain HTTP on a loopback address ("": none)
	PublicURL              string   `toml:"public_url"`
	CORSOrigins            []string `toml:"cors_origins"`
	AccessLog              bool     `toml:"access_log"`
	MaxBodyBytes           int64    `toml:"max_body_bytes"`
	BodyTimeout            Duration `toml:"body_timeout"`
	WriteTimeout           Duration `toml:"write_timeout"`
	SSEWriteTimeout        Duration `toml:"sse_write_timeout"`
	SSEKeepalive           Duration `toml:"sse_keepalive"`
	MaxInFlight            int      `toml:"max_in_flight"`
	LoopbackMaxConnections int      `toml:"loopback_max_connections"`
}

// MCP is the [mcp] section (restart-only): operations as MCP tools at /mcp (docs/mcp.md).
type MCP struct {
	Enabled                bool     `toml:"enabled"`
	Stateless              bool     `toml:"stateless"`
	SessionTimeout         Duration `toml:"session_timeout"`
	MaxSessions            int      `toml:"max_sessions"`
	MaxSessionsPerIdentity int      `toml:"max_sessions_per_identity"`
	MaxInFlight            int      `toml:"max_in_flight"`
	Exclude                []string `toml:"exclude"`
}

// validateAdapters checks [http] and [mcp]; every error names its key.
func (f *File) validateAdapters() []error {
	var errs []error
	h := f.HTTP
	if h.LoopbackListen != "" {
		if err := gateway.CheckLoopback(h.LoopbackListen); err != nil {
			errs = append(errs, fmt.Errorf("http.loopback_listen: %w", err))
		}
	}
	if h.PublicURL != "" {
		if u, err := url.Parse(h.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("http.public_url: %q is not an http(s) URL", h.PublicURL))
		}
	}
	for i, o := range h.CORSOrigins {
		if err := gateway.CheckOrigin(o); err != nil {
			errs = append(errs, fmt.Errorf("http.cors_origins[%d]: %w", i, err))
		}
	}
	for _, v := range []struct {
		key string
		n   int64
	}{{"http.max_body_bytes", h.MaxBodyBytes}, {"http.max_in_flight", int64(h.MaxInFlight)}, {"http.loopback_max_connections", int64(h.LoopbackMaxConnections)},
		{"mcp.max_sessions", int64(f.MCP.MaxSessions)}, {"mcp.max_sessions_per_identity", int64(f.MCP.MaxSessionsPerIdentity)}, {"mcp.max_in_flight", int64(f.MCP.MaxInFlight)}} {
		if v.n < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", v.key))
		}
	}
	for _, v := range []struct {
		key string
		d   Duration
	}{{"http.body_timeout", h.BodyTimeout}, {"http.write_timeout", h.WriteTimeout}, {"http.sse_write_timeout", h.SSEWriteTimeout},
		{"http.sse_keepalive", h.SSEKeepalive}, {"mcp.session_timeout", f.MCP.SessionTimeout}} {
		if v.d < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", v.key))
		}
	}
	if f.MCP.Enabled && !h.Enabled && h.LoopbackListen == "" {
		errs = append(errs, fmt.Errorf("mcp.enabled: MCP is served at /mcp of the HTTP gateway: set http.enabled or http.loopback_listen"))
	}
	return errs
}
