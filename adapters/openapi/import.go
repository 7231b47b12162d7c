package openapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/alkdev/alknet/adapters/upstream"
	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
)

// Defaults and caps of an OpenAPI import (docs/http.md §5).
const (
	DefaultImportTimeout    = 30 * time.Second
	DefaultMaxConcurrent    = 16
	DefaultMaxResponseBytes = 4 << 20
	maxDocumentBytes        = 8 << 20
	documentFetchTimeout    = 10 * time.Second
)

// ErrImport matches every error that stops an import.
var ErrImport = errors.New("openapi import")

// ImportConfig is one [[openapi_import]].
type ImportConfig struct {
	Service               string // names the import and its capabilities (http_token:<service>, api_key:<service>)
	Prefix                string // default Service
	Source                string // a file or an http(s) URL
	BaseURL               string // default servers[0].url, which must then share source's origin
	Include, Exclude      []string
	Visibility            call.Visibility // default Internal
	RequiredScopes        []string
	AllowAnonymous        bool
	Timeout               time.Duration
	MaxConcurrent         int
	MaxResponseBytes      int64
	AllowLoopbackHTTP     bool
	AllowQueryCredentials bool
	Version               string // User-Agent: alknet/<version>
}

// Capability names an import reads its credentials from.
func TokenCapability(service string) string  { return "http_token:" + service }
func APIKeyCapability(service string) string { return "api_key:" + service }

// Imported is a loaded OpenAPI import: its operations as registrations.
type Imported struct {
	cfg    ImportConfig
	client *http.Client
	regs   []call.HandlerRegistration
	sem    chan struct{}
}

// Registrations returns the import's operations (provenance FromOpenAPI).
func (im *Imported) Registrations() []call.HandlerRegistration { return im.regs }

// Close releases the import's connections.
func (im *Imported) Close() { upstream.Close(im.client) }

func (cfg ImportConfig) withDefaults() ImportConfig {
	if cfg.Prefix == "" {
		cfg.Prefix = cfg.Service
	}
	if cfg.Visibility == "" {
		cfg.Visibility = call.VisibilityInternal
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultImportTimeout
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	return cfg
}

func importErr(cfg ImportConfig, format string, a ...any) error {
	return fmt.Errorf("%w %s: %s", ErrImport, cfg.Service, fmt.Sprintf(format, a...))
}

// Import loads cfg.Source and builds its operations (docs/http.md §5). caps holds the
// node's capabilities; only http_token:<service> and api_key:<service> are bound. An
// operation that cannot be imported is skipped with a warning; a missing credential an
// operation needs, a bad document or a refused origin fails the whole import.
func Import(ctx context.Context, cfg ImportConfig, caps core.Capabilities, log *slog.Logger) (*Imported, error) {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	data, sourceURL, err := loadSource(ctx, cfg)
	if err != nil {
		return nil, err
	}
	doc, err := parseDocument(ctx, data, sourceURL)
	if err != nil {
		return nil, importErr(cfg, "%v", err)
	}
	base, err := baseURL(cfg, doc, sourceURL)
	if err != nil {
		return nil, err
	}
	im := &Imported{cfg: cfg, sem: make(chan struct{}, cfg.MaxConcurrent)}
	im.client = upstream.NewClient(upstream.Options{Origin: base})
	ops, skipped, err := buildOperations(doc, cfg)
	if err != nil {
		im.Close()
		return nil, importErr(cfg, "%v", err)
	}
	for _, s := range skipped {
		log.Warn("openapi import: operation skipped", "service", cfg.Service, "op", s.op, "reason", s.reason)
	}
	bound := map[string][]byte{}
	for _, op := range ops {
		if op.credential == "" {
			continue
		}
		v, ok := caps.Get(op.credential)
		if !ok {
			im.Close()
			return nil, importErr(cfg, "operation %s needs the capability %q ([[capability]] name = %q)", op.name, op.credential, op.credential)
		}
		bound[op.credential] = v
	}
	boundCaps := core.NewCapabilities(bound)
	for _, v := range bound {
		clear(v)
	}
	for _, op := range ops {
		hr := call.HandlerRegistration{Spec: op.spec, Provenance: call.ProvenanceFromOpenAPI, Capabilities: boundCaps,
			Handler: im.handler(op, base)}
		if _, err := call.NewRegistration(hr); err != nil {
			log.Warn("openapi import: operation skipped", "service", cfg.Service, "op", op.name, "reason", err.Error())
			continue
		}
		im.regs = append(im.regs, hr)
	}
	log.Info("openapi import", "service", cfg.Service, "operations", len(im.regs), "skipped", len(skipped), "origin", upstream.Origin(base))
	return im, nil
}

// loadSource reads the document: a file, or a URL fetched without credentials (≤ 8 MiB, 10 s,
// ≤ 3 same-origin redirects, the address rules).
func loadSource(ctx context.Context, cfg ImportConfig) ([]byte, *url.URL, error) {
	if !strings.Contains(cfg.Source, "://") {
		f, err := os.Open(cfg.Source)
		if err != nil {
			return nil, nil, importErr(cfg, "source: %v", err)
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, maxDocumentBytes+1))
		if err != nil {
			return nil, nil, importErr(cfg, "source: %v", err)
		}
		if len(data) > maxDocumentBytes {
			return nil, nil, importErr(cfg, "source: larger than %d bytes", maxDocumentBytes)
		}
		return data, nil, nil
	}
	u, err := upstream.CheckURL(cfg.Source, cfg.AllowLoopbackHTTP)
	if err != nil {
		return nil, nil, importErr(cfg, "source: %v", err)
	}
	c := upstream.NewClient(upstream.Options{Origin: u})
	defer upstream.Close(c)
	ctx, cancel := context.WithTimeout(ctx, documentFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, importErr(cfg, "source: %v", err)
	}
	req.Header.Set("Accept", "application/json, application/yaml;q=0.9, */*;q=0.5")
	req.Header.Set("User-Agent", "alknet/"+cfg.Version)
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, importErr(cfg, "source: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, importErr(cfg, "source: %s answered %d", u.Redacted(), resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return nil, nil, importErr(cfg, "source: %v", err)
	}
	if len(data) > maxDocumentBytes {
		return nil, nil, importErr(cfg, "source: larger than %d bytes", maxDocumentBytes)
	}
	return data, u, nil
}

// parseDocument loads an OpenAPI 3.0 or 3.1 document with external references refused
// unfetched, and validates it.
func parseDocument(ctx context.Context, data []byte, location *url.URL) (*openapi3.T, error) {
	if bytes.Contains(data, []byte(`"swagger"`)) || bytes.HasPrefix(bytes.TrimSpace(data), []byte("swagger:")) {
		return nil, errors.New("Swagger 2.0 documents are not supported: convert to OpenAPI 3")
	}
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	loader.Context = ctx
	var doc *openapi3.T
	var err error
	if location != nil {
		doc, err = loader.LoadFromDataWithPath(data, location)
	} else {
		doc, err = loader.LoadFromData(data)
	}
	if err != nil {
		return nil, fmt.Errorf("document: %w", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0") && !strings.HasPrefix(doc.OpenAPI, "3.1") {
		return nil, fmt.Errorf("document: openapi %q: want 3.0 or 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("document: %w", err)
	}
	return doc, nil
}

// baseURL is base_url, else servers[0].url (variables at their defaults, resolved against the
// source), which must then have the source's origin (docs/http.md §5.2).
func baseURL(cfg ImportConfig, doc *openapi3.T, source *url.URL) (*url.URL, error) {
	if cfg.BaseURL != "" {
		u, err := upstream.CheckURL(cfg.BaseURL, cfg.AllowLoopbackHTTP)
		if err != nil {
			return nil, importErr(cfg, "base_url: %v", err)
		}
		return u, nil
	}
	if len(doc.Servers) == 0 || doc.Servers[0] == nil {
		if source == nil {
			return nil, importErr(cfg, "the document names no server: set base_url")
		}
		return source.ResolveReference(&url.URL{Path: "/"}), nil
	}
	s := doc.Servers[0]
	raw := s.URL
	for name, v := range s.Variables {
		if v != nil {
			raw = strings.ReplaceAll(raw, "{"+name+"}", v.Default)
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, importErr(cfg, "servers[0].url %q: %v; set base_url", raw, err)
	}
	if source != nil {
		u = source.ResolveReference(u)
	}
	if source == nil || upstream.Origin(u) != upstream.Origin(source) {
		return nil, importErr(cfg, "servers[0].url %q is not the source's origin: set base_url to the API's URL to trust it", raw)
	}
	if _, err := upstream.CheckURL(u.String(), cfg.AllowLoopbackHTTP); err != nil {
		return nil, importErr(cfg, "base_url (from servers[0].url): %v", err)
	}
	return u, nil
}

// matches reports a name kept by include/exclude (exact names or "prefix*").
func matches(name string, patterns []string) bool {
	for _, p := range patterns {
		if p == name || strings.HasSuffix(p, "*") && strings.HasPrefix(name, strings.TrimSuffix(p, "*")) {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
