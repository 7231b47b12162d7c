package nodeconfig

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/alkdev/alknet/adapters/upstream"

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

// AdapterImport is what [[openapi_import]] and [[mcp_import]] share (restart-only).
type AdapterImport struct {
	Service           string   `toml:"service"`
	Prefix            string   `toml:"prefix"` // default service
	Include           []string `toml:"include"`
	Exclude           []string `toml:"exclude"`
	Visibility        string   `toml:"visibility"` // internal (default) | external
	RequiredScopes    []string `toml:"required_scopes"`
	AllowAnonymous    bool     `toml:"allow_anonymous"`
	Timeout           Duration `toml:"timeout"`
	MaxConcurrent     int      `toml:"max_concurrent"`
	Optional          bool     `toml:"optional"` // a failing import is logged and the node starts
	AllowLoopbackHTTP bool     `toml:"allow_loopback_http"`
}

// OpenAPIImport is one [[openapi_import]]: an HTTP API described by OpenAPI (docs/http.md §5).
type OpenAPIImport struct {
	AdapterImport
	Source                string `toml:"source"`
	BaseURL               string `toml:"base_url"`
	MaxResponseBytes      int64  `toml:"max_response_bytes"`
	AllowQueryCredentials bool   `toml:"allow_query_credentials"`
}

// MCPImport is one [[mcp_import]]: an MCP server's tools (docs/mcp.md §7).
type MCPImport struct {
	AdapterImport
	Transport         string            `toml:"transport"` // stdio (default) | http
	Command           []string          `toml:"command"`
	Env               map[string]string `toml:"env"`
	EnvFromCapability map[string]string `toml:"env_from_capability"`
	URL               string            `toml:"url"`
	ProtocolVersion   string            `toml:"protocol_version"`
	Queries           []string          `toml:"queries"`
	ConnectTimeout    Duration          `toml:"connect_timeout"`
	MaxResultBytes    int64             `toml:"max_result_bytes"`
}

// PrefixOf is the import's operation prefix.
func (a AdapterImport) PrefixOf() string {
	if a.Prefix != "" {
		return a.Prefix
	}
	return a.Service
}

// reservedPrefixes are the namespaces of the node's own operations.
var reservedPrefixes = []string{"node", "services"}

// validateAdapterImports checks [[openapi_import]] and [[mcp_import]] (docs/http.md §8.2):
// services unique, prefixes clear of each other, of [[import]] links, of [hub] peers and of the
// node's own namespaces; schemes, commands and visibility. Every error names its key.
func (f *File) validateAdapterImports() []error {
	var errs []error
	type owner struct{ key, prefix string }
	var taken []owner
	for i, im := range f.Imports {
		taken = append(taken, owner{fmt.Sprintf("import[%d].prefix", i), im.Settings().Prefix}, owner{fmt.Sprintf("import[%d].peer_id", i), im.PeerID})
	}
	if f.Hub != nil {
		for i, p := range f.Peers {
			if slices.Contains(p.Scopes, f.Hub.ImportScope) {
				taken = append(taken, owner{fmt.Sprintf("peer[%d] (holds hub.import_scope)", i), p.PeerID})
			}
		}
	}
	for _, r := range reservedPrefixes {
		taken = append(taken, owner{"the node's own " + r + "/ operations", r})
	}
	services := map[string]string{}
	check := func(key string, a AdapterImport) {
		if a.Service == "" || strings.ContainsAny(a.Service, "/ \t") {
			errs = append(errs, fmt.Errorf("%s.service: %q: want a name without / or spaces", key, a.Service))
		}
		if prev, dup := services[a.Service]; dup {
			errs = append(errs, fmt.Errorf("%s.service: %q is also %s", key, a.Service, prev))
		}
		services[a.Service] = key
		p := a.PrefixOf()
		if p == "" || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
			errs = append(errs, fmt.Errorf("%s.prefix: %q is not a valid prefix", key, p))
		}
		for _, o := range taken {
			if o.prefix != "" && (p == o.prefix || strings.HasPrefix(p, o.prefix+"/") || strings.HasPrefix(o.prefix, p+"/")) {
				errs = append(errs, fmt.Errorf("%s.prefix: %q clashes with %s (%q): the operations would collide", key, p, o.key, o.prefix))
			}
		}
		taken = append(taken, owner{key + ".prefix", p})
		switch a.Visibility {
		case "", "internal":
		case "external":
			if len(a.RequiredScopes) == 0 && !a.AllowAnonymous {
				errs = append(errs, fmt.Errorf("%s.required_scopes: an external import needs required scopes (or allow_anonymous = true)", key))
			}
		default:
			errs = append(errs, fmt.Errorf("%s.visibility: %q is not internal or external", key, a.Visibility))
		}
		if a.Timeout < 0 || a.MaxConcurrent < 0 {
			errs = append(errs, fmt.Errorf("%s: timeout and max_concurrent must not be negative", key))
		}
	}
	for i, im := range f.OpenAPIImports {
		key := fmt.Sprintf("openapi_import[%d]", i)
		check(key, im.AdapterImport)
		switch {
		case im.Source == "":
			errs = append(errs, fmt.Errorf("%s.source: a file or URL is required", key))
		case strings.Contains(im.Source, "://"):
			if _, err := upstream.CheckURL(im.Source, im.AllowLoopbackHTTP); err != nil {
				errs = append(errs, fmt.Errorf("%s.source: %w", key, err))
			}
		}
		if im.BaseURL != "" {
			if _, err := upstream.CheckURL(im.BaseURL, im.AllowLoopbackHTTP); err != nil {
				errs = append(errs, fmt.Errorf("%s.base_url: %w", key, err))
			}
		}
		if im.MaxResponseBytes < 0 {
			errs = append(errs, fmt.Errorf("%s.max_response_bytes: must not be negative", key))
		}
	}
	for i, im := range f.MCPImports {
		key := fmt.Sprintf("mcp_import[%d]", i)
		check(key, im.AdapterImport)
		switch im.Transport {
		case "", "stdio":
			if len(im.Command) == 0 || im.Command[0] == "" {
				errs = append(errs, fmt.Errorf("%s.command: a stdio import needs a command (argv)", key))
			}
			for v, c := range im.EnvFromCapability {
				if c != "api_key:"+im.Service && c != "http_token:"+im.Service {
					errs = append(errs, fmt.Errorf("%s.env_from_capability.%s: %q: only api_key:%s or http_token:%s", key, v, c, im.Service, im.Service))
				}
			}
		case "http":
			if _, err := upstream.CheckURL(im.URL, im.AllowLoopbackHTTP); err != nil {
				errs = append(errs, fmt.Errorf("%s.url: %w", key, err))
			}
		default:
			errs = append(errs, fmt.Errorf("%s.transport: %q is not stdio or http", key, im.Transport))
		}
		if im.ConnectTimeout < 0 || im.MaxResultBytes < 0 {
			errs = append(errs, fmt.Errorf("%s: connect_timeout and max_result_bytes must not be negative", key))
		}
	}
	return errs
}
