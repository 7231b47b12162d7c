// Package nodeconfig reads and validates the node's TOML config file (docs/config.example.toml):
// strict decoding (an unknown key names the file, line and key), then validation of the
// static part (core), the dynamic part (peers, API keys, auth rate limits) and the call limits.
package nodeconfig

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/tlsconf"
	"github.com/alkdev/alknet/vault"
)

// ErrInvalid matches every error of this package.
var ErrInvalid = errors.New("config")

const maxFileSize = 4 << 20

// Duration is a Go duration written as a string ("10s", "250ms").
type Duration time.Duration

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("want a Go duration such as \"10s\": %w", err)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// File is the config file.
type File struct {
	Node       Node         `toml:"node"`
	TLS        TLS          `toml:"tls"`
	Auth       Auth         `toml:"auth"`
	Call       Call         `toml:"call"`
	Peers      []Peer       `toml:"peer"`
	APIKeys    []APIKey     `toml:"apikey"`
	Capability []Capability `toml:"capability"`
	Imports    []Import     `toml:"import"`
	Uplinks    []Uplink     `toml:"uplink"`
	Hub        *Hub         `toml:"hub"`
	HTTP       HTTP         `toml:"http"`
	MCP        MCP          `toml:"mcp"`
	Iroh       Iroh         `toml:"iroh"`
	// Adapter imports: never [[import.openapi]], which TOML nests in forwarding's [[import]].
	OpenAPIImports []OpenAPIImport `toml:"openapi_import"`
	MCPImports     []MCPImport     `toml:"mcp_import"`
}

// Node is the static [node] section; changes need a restart.
type Node struct {
	Listen       []string `toml:"listen"`
	Advertise    []string `toml:"advertise"`
	Transports   []string `toml:"transports"` // "quic", "tcp"; empty = both
	DrainTimeout Duration `toml:"drain_timeout"`
	MetricsAddr  string   `toml:"metrics_addr"`
	Limits       Limits   `toml:"limits"`
}

// Limits are core's connection limits (docs/security.md).
type Limits struct {
	MaxConnections      int      `toml:"max_connections"`
	MaxConnectionsPerIP int      `toml:"max_connections_per_ip"`
	HandshakeTimeout    Duration `toml:"handshake_timeout"`
	IdleTimeout         Duration `toml:"idle_timeout"`
	KeepAlivePeriod     Duration `toml:"keep_alive_period"`
	MaxIncomingStreams  int64    `toml:"max_incoming_streams"`
	// Inactivity and abuse limits (docs/security.md).
	SingleStreamIdleTimeout Duration `toml:"single_stream_idle_timeout"`
	WriteTimeout            Duration `toml:"write_timeout"`
	RetryAbove              int      `toml:"retry_above"`
}

// TLS selects the identity mode.
type TLS struct {
	Mode             string   `toml:"mode"`
	CertFile         string   `toml:"cert_file"`
	KeyFile          string   `toml:"key_file"`
	ACMEDomains      []string `toml:"acme_domains"`
	ACMECacheDir     string   `toml:"acme_cache_dir"`
	ACMEEmail        string   `toml:"acme_email"`
	ACMEAcceptTOS    bool     `toml:"acme_accept_tos"`
	ACMEDirectoryURL string   `toml:"acme_directory_url"`
}

// Auth is the failed-auth rate limit (dynamic).
type Auth struct {
	FailuresPerMinute float64 `toml:"failures_per_minute"`
	FailureBurst      int     `toml:"failure_burst"`
}

// Call holds the call limits of docs/protocol.md §17 (dynamic: applied to new connections).
type Call struct {
	DefaultTimeout      Duration `toml:"default_timeout"` // the callee's deadline per request (call.Limits.RequestTimeout)
	StreamIdleTimeout   Duration `toml:"stream_idle_timeout"`
	MaxFrameSize        int      `toml:"max_frame_size"`
	MaxInFlight         int      `toml:"max_in_flight"`
	MaxInFlightTotal    int      `toml:"max_in_flight_total"`
	MaxPartialFrameByte int64    `toml:"max_partial_frame_bytes"`
	MaxCompositionDepth int      `toml:"max_composition_depth"`
	MaxPending          int      `toml:"max_pending"`
	SubscriptionBuffer  int      `toml:"subscription_buffer"`
	CallTimeout         Duration `toml:"call_timeout"`
	MaxForwardHops      int      `toml:"max_forward_hops"`    // 1…64; default 8
	TrustForwardedFor   []string `toml:"trust_forwarded_for"` // peer ids whose forwarded_for claims are believed
}

// Peer is one [[peer]] (dynamic).
type Peer struct {
	PeerID        string              `toml:"peer_id"`
	DisplayName   string              `toml:"display_name"`
	Fingerprints  []string            `toml:"fingerprints"`
	Scopes        []string            `toml:"scopes"`
	AuthTokenHash string              `toml:"auth_token_hash"`
	Resources     map[string][]string `toml:"resources"`
	Enabled       *bool               `toml:"enabled"` // absent = true
}

// APIKey is one [[apikey]] (dynamic).
type APIKey struct {
	Prefix      string    `toml:"prefix"`
	Hash        string    `toml:"hash"`
	Scopes      []string  `toml:"scopes"`
	Description string    `toml:"description"`
	ExpiresAt   time.Time `toml:"expires_at"`
}

// Capability is one [[capability]]: a secret sealed by 'alknet secret seal'.
type Capability struct {
	Name string `toml:"name"`
	Blob Blob   `toml:"blob"`
}

// Blob is an EncryptedData in TOML form.
type Blob struct {
	KeyVersion uint32 `toml:"key_version"`
	Salt       string `toml:"salt"`
	IV         string `toml:"iv"`
	Data       string `toml:"data"`
}

// EncryptedData converts the blob for the vault.
func (b Blob) EncryptedData() *vault.EncryptedData {
	return &vault.EncryptedData{KeyVersion: b.KeyVersion, Salt: b.Salt, IV: b.IV, Data: b.Data}
}

// Load reads and strictly decodes path; an absent file is all defaults when allowMissing.
func Load(path string, allowMissing bool) (*File, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && allowMissing {
		return &File{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrInvalid, path, maxFileSize)
	}
	return Parse(path, data)
}

// Parse decodes data strictly; errors name the file, line and key.
func Parse(path string, data []byte) (*File, error) {
	var f File
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		var strict *toml.StrictMissingError
		var de *toml.DecodeError
		switch {
		case errors.As(err, &strict):
			var msgs []string
			for _, e := range strict.Errors {
				row, _ := e.Position()
				msgs = append(msgs, fmt.Sprintf("%s:%d: unknown key %s", path, row, strings.Join(e.Key(), ".")))
			}
			return nil, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(msgs, "; "))
		case errors.As(err, &de):
			row, _ := de.Position()
			return nil, fmt.Errorf("%w: %s:%d: %s", ErrInvalid, path, row, de.Error())
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, path, err)
	}
	return &f, nil
}

// Static returns the core static config; listen overrides [node] listen when non-empty.
func (f *File) Static(listen []string, defaultListen string) config.Static {
	if len(listen) == 0 {
		listen = f.Node.Listen
	}
	if len(listen) == 0 {
		listen = []string{defaultListen}
	}
	var s config.Static
	quic, tcp := true, true
	if len(f.Node.Transports) > 0 {
		quic, tcp = false, false
		for _, t := range f.Node.Transports {
			switch t {
			case "quic":
				quic = true
			case "tcp":
				tcp = true
			}
		}
	}
	if quic {
		s.QUICAddrs = listen
	}
	if tcp {
		s.TCPAddrs = listen
	}
	s.TLS = tlsconf.ServerOptions{Mode: f.TLS.Mode, CertFile: f.TLS.CertFile, KeyFile: f.TLS.KeyFile, ACMEDomains: f.TLS.ACMEDomains,
		ACMECacheDir: f.TLS.ACMECacheDir, ACMEEmail: f.TLS.ACMEEmail, ACMEAcceptTOS: f.TLS.ACMEAcceptTOS, ACMEDirectoryURL: f.TLS.ACMEDirectoryURL}
	s.DrainTimeout = time.Duration(f.Node.DrainTimeout)
	s.Limits = f.CoreLimits()
	return s
}

// CoreLimits are the [node.limits].
func (f *File) CoreLimits() config.Limits {
	l := f.Node.Limits
	return config.Limits{MaxConnections: l.MaxConnections, MaxConnectionsPerIP: l.MaxConnectionsPerIP,
		HandshakeTimeout: time.Duration(l.HandshakeTimeout), IdleTimeout: time.Duration(l.IdleTimeout),
		KeepAlivePeriod: time.Duration(l.KeepAlivePeriod), MaxIncomingStreams: l.MaxIncomingStreams,
		SingleStreamIdleTimeout: time.Duration(l.SingleStreamIdleTimeout), WriteTimeout: time.Duration(l.WriteTimeout),
		RetryAbove: l.RetryAbove}
}

// Dynamic returns peers, API keys and rate limits (absent enabled = true).
func (f *File) Dynamic() config.DynamicConfig {
	var d config.DynamicConfig
	for _, p := range f.Peers {
		enabled := p.Enabled == nil || *p.Enabled
		d.Peers = append(d.Peers, auth.PeerEntry{PeerID: p.PeerID, DisplayName: p.DisplayName, Fingerprints: p.Fingerprints,
			Scopes: p.Scopes, AuthTokenHash: p.AuthTokenHash, Resources: p.Resources, Enabled: enabled})
	}
	for _, k := range f.APIKeys {
		d.APIKeys = append(d.APIKeys, auth.APIKeyEntry{Prefix: k.Prefix, Hash: k.Hash, Scopes: k.Scopes, Description: k.Description, ExpiresAt: k.ExpiresAt})
	}
	d.RateLimits = auth.RateLimits{FailuresPerMinute: f.Auth.FailuresPerMinute, FailureBurst: f.Auth.FailureBurst}
	return d
}

// CallLimits are the dispatcher's limits from [call].
func (f *File) CallLimits() call.Limits {
	c := f.Call
	return call.Limits{RequestTimeout: time.Duration(c.DefaultTimeout), StreamIdleTimeout: time.Duration(c.StreamIdleTimeout),
		MaxFrameSize: c.MaxFrameSize, MaxInFlight: c.MaxInFlight, MaxCompositionDepth: c.MaxCompositionDepth,
		MaxInFlightTotal: c.MaxInFlightTotal, MaxPartialFrameBytes: c.MaxPartialFrameByte,
		MaxForwardHops: c.MaxForwardHops, TrustForwardedFor: c.TrustForwardedFor}
}

// ConnOptions is the per-connection part of [call].
func (f *File) ConnOptions() call.ConnOptions {
	return call.ConnOptions{MaxPending: f.Call.MaxPending, SubscriptionBuffer: f.Call.SubscriptionBuffer, CallTimeout: time.Duration(f.Call.CallTimeout)}
}

// ReservedPeerPrefix starts the peer ids the node gives its own identities (the local admin
// key of `alknet status` and `alknet reload`); config files may not use it.
const ReservedPeerPrefix = "@"

// Validate checks everything the node would refuse at start, reporting all problems.
func (f *File) Validate(path string, listen []string, defaultListen string) error {
	var errs []error
	if err := f.Static(listen, defaultListen).Validate(nil); err != nil {
		errs = append(errs, err)
	}
	for i, t := range f.Node.Transports {
		if t != "quic" && t != "tcp" {
			errs = append(errs, fmt.Errorf("node.transports[%d]: %q is not quic or tcp", i, t))
		}
	}
	for i, p := range f.Peers {
		if strings.HasPrefix(p.PeerID, ReservedPeerPrefix) {
			errs = append(errs, fmt.Errorf("peer[%d].peer_id: %q: names starting with %q are reserved for the node's own identities", i, p.PeerID, ReservedPeerPrefix))
		}
	}
	if _, err := config.NewStore(f.Dynamic()); err != nil {
		errs = append(errs, err)
	}
	if err := f.CallLimits().Validate(); err != nil {
		errs = append(errs, err)
	}
	seen := map[string]bool{}
	for i, c := range f.Capability {
		if c.Name == "" || seen[c.Name] {
			errs = append(errs, fmt.Errorf("capability[%d].name: empty or duplicate %q", i, c.Name))
		}
		seen[c.Name] = true
	}
	errs = append(errs, f.validateLinks()...)
	errs = append(errs, f.validateAdapters()...)
	errs = append(errs, f.validateAdapterImports()...)
	errs = append(errs, f.validateIroh()...)
	for i, a := range f.Node.Advertise {
		if _, err := splitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("node.advertise[%d]: %v", i, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s: %w", ErrInvalid, path, errors.Join(errs...))
	}
	return nil
}
