package call

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/alkdev/alknet/core"

	"github.com/alkdev/alknet/call/internal/schema"
)

// Import limits and defaults (docs/protocol.md §11.5).
const (
	DefaultDeadlineMargin    = 100 * time.Millisecond
	DefaultMaxImportOps      = 1024
	DefaultMaxSchemaBytes    = 256 << 10
	DefaultMaxCatalogueBytes = 8 << 20
	maxImportNameBytes       = 256
	schemaCallsInFlight      = 16
)

// ImportConfig says what ImportFrom takes from a peer and how it is offered here.
type ImportConfig struct {
	Peer                 string                   // layer id; used in errors, logs and forwarded errors
	Prefix               string                   // "" = none; else local name = Prefix + "/" + remote name
	Alias                map[string]string        // remote name → local name (instead of Prefix)
	Filter               func(remote string) bool // nil = all
	KeepRemoteVisibility bool                     // true: External here (exposed); false: Internal
	AccessControl        *AccessControl           // nil: the remote's, less its resource checks
	Capabilities         core.Capabilities        // bound to every imported registration
	AuthTokenCapability  string                   // the capability sent as auth_token; "" = none
	DeadlineMargin       time.Duration            // 0 → 100 ms (§5.2)
	MaxOperations        int                      // 0 → 1024
	MaxSchemaBytes       int                      // 0 → 256 KiB per services/schema output
	MaxCatalogueBytes    int                      // 0 → 8 MiB: list pages plus schema outputs
	Previous             *ImportResult            // a refresh: the link's last result
}

// ImportResult is what ImportFrom built: registrations to install (Conn.ReplaceImports) and
// the operations it left out, with why.
type ImportResult struct {
	Registrations []HandlerRegistration
	Skipped       []*ImportError

	raw map[string]importedRaw // local name → the bytes it was built from (refreshes)
}

type importedRaw struct {
	entry, schema string
	reg           HandlerRegistration
}

// ImportErrorKind says why an import, or one operation of it, failed.
type ImportErrorKind int

// Import error kinds.
const (
	DiscoveryFailed ImportErrorKind = iota + 1
	SchemaParse
	Transport
	Unauthorized
	SamePeerCollision
	CoreCollision
	Loop
)

func (k ImportErrorKind) String() string {
	switch k {
	case DiscoveryFailed:
		return "discovery failed"
	case SchemaParse:
		return "schema parse"
	case Transport:
		return "transport"
	case Unauthorized:
		return "unauthorized"
	case SamePeerCollision:
		return "same-peer collision"
	case CoreCollision:
		return "core collision"
	case Loop:
		return "loop"
	}
	return fmt.Sprintf("ImportErrorKind(%d)", int(k))
}

// ImportError is an import that failed (ImportFrom's error) or an operation left out of one
// (ImportResult.Skipped).
type ImportError struct {
	Kind     ImportErrorKind
	Peer, Op string
	Err      error
}

func (e *ImportError) Error() string {
	if e.Op == "" {
		return fmt.Sprintf("call: import from %s: %s: %v", e.Peer, e.Kind, e.Err)
	}
	return fmt.Sprintf("call: import from %s: %s: %s: %v", e.Peer, e.Kind, e.Op, e.Err)
}

func (e *ImportError) Unwrap() error { return e.Err }

func (cfg ImportConfig) withDefaults() ImportConfig {
	if cfg.DeadlineMargin <= 0 {
		cfg.DeadlineMargin = DefaultDeadlineMargin
	}
	if cfg.MaxOperations <= 0 {
		cfg.MaxOperations = DefaultMaxImportOps
	}
	if cfg.MaxSchemaBytes <= 0 {
		cfg.MaxSchemaBytes = DefaultMaxSchemaBytes
	}
	if cfg.MaxCatalogueBytes <= 0 {
		cfg.MaxCatalogueBytes = DefaultMaxCatalogueBytes
	}
	return cfg
}

// discoveryOps are never imported.
var discoveryOps = []string{OpServicesList, OpServicesSchema, OpServicesListPeers}

// importName reports whether n is an importable name: valid (§8.1), at most 256 bytes, of
// [A-Za-z0-9._@/-] only.
func importName(n string) bool {
	if !validName(n) || len(n) > maxImportNameBytes {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '@' || c == '/' || c == '-') {
			return false
		}
	}
	return true
}

// listed is one services/list entry as read from a peer.
type listed struct {
	name, opType string
	via          []string
	raw          string
}

// ImportFrom reads the catalogue of the peer on c (services/list, then services/schema per
// operation) and builds forwarding registrations for it (docs/protocol.md §11.5). It installs
// nothing: pass the result to c.ReplaceImports. The error is an *ImportError.
func ImportFrom(ctx context.Context, c *Conn, cfg ImportConfig) (ImportResult, error) {
	cfg = cfg.withDefaults()
	fail := func(kind ImportErrorKind, err error) (ImportResult, error) {
		return ImportResult{}, &ImportError{Kind: kind, Peer: cfg.Peer, Err: err}
	}
	var opts []CallOption
	if cfg.AuthTokenCapability != "" {
		tok, ok := cfg.Capabilities.Get(cfg.AuthTokenCapability)
		if !ok {
			return fail(Unauthorized, fmt.Errorf("capability %q is not bound", cfg.AuthTokenCapability))
		}
		opts = append(opts, WithAuthToken(string(tok))) // a bearer token may be a string; the bytes are wiped
		clear(tok)
	}
	if cfg.Prefix != "" && (!importName(cfg.Prefix) || strings.Contains(cfg.Prefix, "/")) {
		return fail(DiscoveryFailed, fmt.Errorf("invalid prefix %q", cfg.Prefix))
	}
	remoteFP := c.c.RemoteFingerprint()
	if remoteFP == "" {
		return fail(Transport, errors.New("the connection has no remote fingerprint"))
	}
	budget := cfg.MaxCatalogueBytes
	entries, kind, err := readCatalogue(ctx, c, cfg, opts, &budget)
	if err != nil {
		return fail(kind, err)
	}
	res := ImportResult{raw: map[string]importedRaw{}}
	skip := func(kind ImportErrorKind, op string, err error) {
		res.Skipped = append(res.Skipped, &ImportError{Kind: kind, Peer: cfg.Peer, Op: op, Err: err})
	}
	type todo struct {
		listed
		local string
		via   []string
	}
	var work []todo
	locals := map[string]string{}
	for _, e := range entries {
		if e.name == "" || e.opType == "" {
			skip(SchemaParse, e.name, errors.New("entry without a string name or op_type"))
			continue
		}
		remote := stripSlash(e.name)
		if slices.Contains(discoveryOps, remote) || (cfg.Filter != nil && !cfg.Filter(remote)) {
			continue
		}
		switch OperationType(e.opType) {
		case OpQuery, OpMutation, OpSubscription:
		default:
			skip(SchemaParse, remote, fmt.Errorf("unknown op_type %q", e.opType))
			continue
		}
		local := remote
		if a, ok := cfg.Alias[remote]; ok {
			local = a
		} else if cfg.Prefix != "" {
			local = cfg.Prefix + "/" + remote
		}
		if !importName(remote) || !importName(local) {
			skip(SchemaParse, remote, fmt.Errorf("invalid name (local %q)", local))
			continue
		}
		if _, core := c.d.reg.lookup(local); core {
			skip(CoreCollision, remote, fmt.Errorf("%s is a core operation here", local))
			continue
		}
		via := append([]string{remoteFP}, e.via...)
		if len(via) > c.d.cfg.MaxForwardHops || (c.d.nodeFP != "" && slices.Contains(via, c.d.nodeFP)) {
			skip(Loop, remote, fmt.Errorf("via %v passes this node or %d hops", via, c.d.cfg.MaxForwardHops))
			continue
		}
		if other, dup := locals[local]; dup {
			return fail(SamePeerCollision, fmt.Errorf("%s and %s both map to %s", other, remote, local))
		}
		locals[local] = remote
		work = append(work, todo{listed: e, local: local, via: via})
	}
	schemas := make([]json.RawMessage, len(work))
	errs := make([]error, len(work))
	if err := fetchSchemas(ctx, c, cfg, opts, &budget, func(i int) string { return stripSlash(work[i].name) }, schemas, errs); err != nil {
		return fail(Transport, err)
	}
	fwd := newForwarder(c, cfg)
	for i, w := range work {
		remote := stripSlash(w.name)
		if err := errs[i]; err != nil {
			kind := SchemaParse
			if errors.Is(err, ErrForbidden) {
				kind = Unauthorized
			}
			skip(kind, remote, err)
			continue
		}
		if prev, ok := cfg.Previous.rawFor(w.local); ok && prev.entry == w.raw && prev.schema == string(schemas[i]) {
			res.Registrations = append(res.Registrations, prev.reg)
			res.raw[w.local] = prev
			continue
		}
		hr, err := fwd.registration(w.local, remote, OperationType(w.opType), schemas[i], w.via)
		if err != nil {
			skip(SchemaParse, remote, err)
			continue
		}
		res.Registrations = append(res.Registrations, hr)
		res.raw[w.local] = importedRaw{entry: w.raw, schema: string(schemas[i]), reg: hr}
	}
	c.log.Info("imported", "peer_id", cfg.Peer, "count", len(res.Registrations), "skipped", len(res.Skipped))
	for _, s := range res.Skipped {
		c.log.Warn("import skipped an operation", "peer_id", cfg.Peer, "op", s.Op, "kind", s.Kind.String(), "err", s.Err)
	}
	return res, nil
}

func (r *ImportResult) rawFor(local string) (importedRaw, bool) {
	if r == nil || r.raw == nil {
		return importedRaw{}, false
	}
	v, ok := r.raw[local]
	return v, ok
}

// readCatalogue reads every services/list page, within the byte and count caps.
func readCatalogue(ctx context.Context, c *Conn, cfg ImportConfig, opts []CallOption, budget *int) ([]listed, ImportErrorKind, error) {
	var out []listed
	after := ""
	for {
		in := json.RawMessage(`{}`)
		if after != "" {
			in, _ = json.Marshal(map[string]string{"after": after})
		}
		page, err := c.Call(ctx, OpServicesList, in, opts...)
		if err != nil {
			var ce *Error
			switch {
			case errors.Is(err, ErrForbidden):
				return nil, Unauthorized, err
			case errors.As(err, &ce) && !ce.IsRemote():
				return nil, Transport, err
			}
			return nil, DiscoveryFailed, err
		}
		if *budget -= len(page); *budget < 0 {
			return nil, DiscoveryFailed, fmt.Errorf("catalogue larger than %d bytes", cfg.MaxCatalogueBytes)
		}
		var doc struct {
			Operations *[]json.RawMessage `json:"operations"`
			Next       *string            `json:"next"`
		}
		if json.Unmarshal(page, &doc) != nil || doc.Operations == nil {
			return nil, DiscoveryFailed, errors.New("services/list output has no operations array")
		}
		for _, raw := range *doc.Operations {
			out = append(out, parseListed(raw))
			if len(out) > cfg.MaxOperations {
				return nil, DiscoveryFailed, fmt.Errorf("more than %d operations", cfg.MaxOperations)
			}
		}
		if doc.Next == nil || *doc.Next == "" || *doc.Next <= after {
			return out, 0, nil
		}
		after = *doc.Next
	}
}

// parseListed reads one services/list entry leniently: fields of the wrong type read as absent.
func parseListed(raw json.RawMessage) listed {
	var e struct {
		Name   any `json:"name"`
		OpType any `json:"op_type"`
		Via    any `json:"via"`
	}
	l := listed{raw: string(raw)}
	if json.Unmarshal(raw, &e) != nil {
		return l
	}
	l.name, _ = e.Name.(string)
	l.opType, _ = e.OpType.(string)
	if arr, ok := e.Via.([]any); ok {
		for _, v := range arr {
			if s, ok := v.(string); ok && len(s) <= 128 {
				l.via = append(l.via, s)
			}
		}
	}
	return l
}

// fetchSchemas calls services/schema for each name, at most 16 at a time; a local failure
// (the link) fails the whole import, a remote one is that operation's error.
func fetchSchemas(ctx context.Context, c *Conn, cfg ImportConfig, opts []CallOption, budget *int, name func(int) string, out []json.RawMessage, errs []error) error {
	var mu sync.Mutex
	var wg sync.WaitGroup
	var fatal error
	sem := make(chan struct{}, schemaCallsInFlight)
	for i := range out {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			in, _ := json.Marshal(map[string]string{"name": name(i)})
			s, err := c.Call(ctx, OpServicesSchema, in, opts...)
			mu.Lock()
			defer mu.Unlock()
			var ce *Error
			switch {
			case err != nil && errors.As(err, &ce) && !ce.IsRemote():
				if fatal == nil {
					fatal = err
				}
			case err != nil:
				errs[i] = err
			case len(s) > cfg.MaxSchemaBytes:
				errs[i] = fmt.Errorf("schema of %d bytes (max %d)", len(s), cfg.MaxSchemaBytes)
			default:
				if *budget -= len(s); *budget < 0 && fatal == nil {
					fatal = fmt.Errorf("catalogue larger than %d bytes", cfg.MaxCatalogueBytes)
				}
				out[i] = s
			}
		}()
	}
	wg.Wait()
	return fatal
}

// forwarder holds what every registration of one import shares: the link, the settings and
// the per-root-connection count of forwarded requests on the link.
type forwarder struct {
	c   *Conn
	cfg ImportConfig

	mu      sync.Mutex
	pending map[*Conn]int // root connection (nil: ingress roots) → forwarded requests in flight
}

func newForwarder(c *Conn, cfg ImportConfig) *forwarder {
	return &forwarder{c: c, cfg: cfg, pending: map[*Conn]int{}}
}

// registration builds the forwarding registration of one remote operation from its
// services/schema output.
func (f *forwarder) registration(local, remote string, t OperationType, schemaOut json.RawMessage, via []string) (HandlerRegistration, error) {
	spec, acl, err := specFromSchema(local, t, schemaOut, func(code string, err error) {
		f.c.log.Warn("import dropped an error schema", "peer_id", f.cfg.Peer, "op", remote, "code", code, "err", err)
	})
	if err != nil {
		return HandlerRegistration{}, err
	}
	if f.cfg.KeepRemoteVisibility {
		spec.Visibility = VisibilityExternal
	}
	var known []string
	for _, d := range spec.ErrorSchemas {
		known = append(known, d.Code)
	}
	switch {
	case f.cfg.AccessControl != nil:
		spec.AccessControl = *f.cfg.AccessControl
	case acl != nil:
		spec.AccessControl = AccessControl{RequiredScopes: acl.RequiredScopes, RequiredScopesAny: acl.RequiredScopesAny}
	}
	hr := HandlerRegistration{Spec: spec, Provenance: ProvenanceFromCall, Capabilities: f.cfg.Capabilities, via: via}
	if t == OpSubscription {
		hr.Stream = func(ctx context.Context, oc *OperationContext, in json.RawMessage, emit func(json.RawMessage) error) error {
			return f.subscribe(ctx, oc, remote, known, in, emit)
		}
	} else {
		hr.Handler = func(ctx context.Context, oc *OperationContext, in json.RawMessage) (json.RawMessage, error) {
			return f.call(ctx, oc, remote, known, in)
		}
	}
	if _, err := NewRegistration(hr); err != nil { // schemas compile (§12.1)
		return HandlerRegistration{}, err
	}
	return hr, nil
}

// specFromSchema reads one services/schema output into an Internal spec named local, and the
// remote's access control as it declared it (nil: none). Error schemas that do not compile
// or name a protocol code are dropped (drop reports them).
func specFromSchema(local string, t OperationType, schemaOut json.RawMessage, drop func(code string, err error)) (OperationSpec, *AccessControl, error) {
	var s struct {
		Description   *string           `json:"description"`
		OpType        string            `json:"op_type"`
		InputSchema   json.RawMessage   `json:"input_schema"`
		OutputSchema  json.RawMessage   `json:"output_schema"`
		ErrorSchemas  []ErrorDefinition `json:"error_schemas"`
		AccessControl *AccessControl    `json:"access_control"`
	}
	if err := json.Unmarshal(schemaOut, &s); err != nil {
		return OperationSpec{}, nil, fmt.Errorf("services/schema output: %w", err)
	}
	if s.OpType != "" && OperationType(s.OpType) != t {
		return OperationSpec{}, nil, fmt.Errorf("op_type %q in the schema, %q in the list", s.OpType, t)
	}
	spec := OperationSpec{Name: local, Type: t, Visibility: VisibilityInternal}
	if s.Description != nil {
		spec.Description = *s.Description
	}
	nonNull := func(r json.RawMessage) json.RawMessage {
		if string(r) == "null" {
			return nil
		}
		return r
	}
	spec.InputSchema, spec.OutputSchema = nonNull(s.InputSchema), nonNull(s.OutputSchema)
	for _, d := range s.ErrorSchemas {
		if d.Code == "" || IsProtocolCode(d.Code) {
			continue
		}
		d.Schema = nonNull(d.Schema)
		if _, err := schema.Compile(d.Schema); err != nil {
			drop(d.Code, err)
			continue
		}
		spec.ErrorSchemas = append(spec.ErrorSchemas, d)
	}
	return spec, s.AccessControl, nil
}

// ReadCatalogue reads the catalogue of the node on c as this connection's caller sees it:
// every services/list page, then services/schema per operation, within the caps of cfg
// (ImportConfig's MaxOperations, MaxSchemaBytes, MaxCatalogueBytes; other fields unused).
// The specs are External and keep the node's access control; discovery operations included.
// An operation whose schema cannot be read is left out.
func ReadCatalogue(ctx context.Context, c *Conn, cfg ImportConfig) ([]OperationSpec, error) {
	cfg = cfg.withDefaults()
	budget := cfg.MaxCatalogueBytes
	entries, _, err := readCatalogue(ctx, c, cfg, nil, &budget)
	if err != nil {
		return nil, err
	}
	schemas := make([]json.RawMessage, len(entries))
	errs := make([]error, len(entries))
	if err := fetchSchemas(ctx, c, cfg, nil, &budget, func(i int) string { return stripSlash(entries[i].name) }, schemas, errs); err != nil {
		return nil, err
	}
	var out []OperationSpec
	for i, e := range entries {
		if errs[i] != nil || e.name == "" {
			continue
		}
		spec, acl, err := specFromSchema(stripSlash(e.name), OperationType(e.opType), schemas[i], func(string, error) {})
		if err != nil {
			continue
		}
		spec.Visibility = VisibilityExternal
		if acl != nil {
			spec.AccessControl = *acl
		}
		out = append(out, spec)
	}
	return out, nil
}

// options builds the outgoing request's options (§5.1, §6, §7), or the local error that stops
// it before anything is sent.
func (f *forwarder) options(ctx context.Context, oc *OperationContext, known []string, sub bool) ([]CallOption, *Error) {
	via := append(oc.Via(), f.c.d.nodeFP)
	if f.c.d.nodeFP == "" {
		via = via[:len(via)-1]
	}
	if len(via) > f.c.d.cfg.MaxForwardHops {
		return nil, &Error{code: CodeInternal, message: fmt.Sprintf("too many forwarding hops: %d (max %d)", len(via), f.c.d.cfg.MaxForwardHops)}
	}
	if remote := f.c.c.RemoteFingerprint(); remote != "" && slices.Contains(via, remote) {
		return nil, errLoop(remote, via)
	}
	opts := []CallOption{func(o *callOpts) { o.via = via }, WithKnownCodes(known...)}
	if oc.Origin != nil {
		opts = append(opts, WithForwardedFor(oc.Origin))
	}
	if f.cfg.AuthTokenCapability != "" {
		// The registration's own capabilities (CP §10.3), never a parent's of that name.
		if tok, ok := oc.Capabilities.Get(f.cfg.AuthTokenCapability); ok {
			opts = append(opts, WithAuthToken(string(tok)))
			clear(tok)
		}
	}
	if dl, ok := ctx.Deadline(); ok && !sub {
		r := time.Until(dl)
		if r <= 0 {
			return nil, errDeadline()
		}
		opts = append(opts, WithTimeout(r-f.margin(r)))
	}
	return opts, nil
}

// margin is how much earlier than its own deadline a forwarder gives up on the remote (§5.2),
// so the remote's TIMEOUT never races the root's.
func (f *forwarder) margin(r time.Duration) time.Duration { return min(f.cfg.DeadlineMargin, r/2) }

// admit counts one forwarded request of the root connection ctx belongs to; past MaxPending/4
// that caller alone is refused.
func (f *forwarder) admit(ctx context.Context) (release func(), ce *Error) {
	root, _ := ConnFromContext(ctx)
	limit := max(f.c.o.MaxPending/4, 1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pending[root] >= limit {
		return nil, &Error{code: CodeInternal, message: "peer " + f.cfg.Peer + ": " + msgTooManyPending, retryable: true}
	}
	f.pending[root]++
	return func() {
		f.mu.Lock()
		if f.pending[root]--; f.pending[root] <= 0 {
			delete(f.pending, root)
		}
		f.mu.Unlock()
	}, nil
}

func (f *forwarder) call(ctx context.Context, oc *OperationContext, remote string, known []string, in json.RawMessage) (json.RawMessage, error) {
	opts, ce := f.options(ctx, oc, known, false)
	if ce != nil {
		return nil, ce
	}
	release, ce := f.admit(ctx)
	if ce != nil {
		return nil, ce
	}
	defer release()
	out, err := f.c.Call(ctx, remote, in, opts...)
	if err != nil {
		return nil, f.mapError(ctx, err)
	}
	return out, nil
}

func (f *forwarder) subscribe(ctx context.Context, oc *OperationContext, remote string, known []string, in json.RawMessage, emit func(json.RawMessage) error) error {
	opts, ce := f.options(ctx, oc, known, true)
	if ce != nil {
		return ce
	}
	release, ce := f.admit(ctx)
	if ce != nil {
		return ce
	}
	defer release()
	if dl, ok := ctx.Deadline(); ok { // a subscription is timed only under a deadline
		r := time.Until(dl)
		if r <= 0 {
			return errDeadline()
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r-f.margin(r))
		defer cancel()
	}
	sub, err := f.c.Subscribe(ctx, remote, in, opts...)
	if err != nil {
		return f.mapError(ctx, err)
	}
	defer sub.Close()
	for {
		item, err := sub.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return f.mapError(ctx, err)
		}
		if err := emit(item); err != nil {
			return err
		}
	}
}

// mapError implements §5.5: the peer's errors unchanged, a local timeout unchanged, the
// forwarder's own ctx's cause when it ended, any other local error as "peer <id>: <message>".
func (f *forwarder) mapError(ctx context.Context, err error) error {
	var ce *Error
	if !errors.As(err, &ce) {
		return err
	}
	if ce.IsRemote() {
		return ce
	}
	if ctx.Err() != nil {
		return ctxError(ctx)
	}
	if ce.code == CodeTimeout && ce.message == msgRequestTimedOut {
		return ce
	}
	if f.c.ctx.Err() != nil { // the link itself ended: whatever the stream saw first
		return &Error{code: CodeInternal, message: "peer " + f.cfg.Peer + ": " + msgConnectionClosed, retryable: true, cause: ce}
	}
	retryable := ce.retryable
	switch {
	case ce.message == msgConnectionClosed, ce.message == msgStreamClosed, ce.message == msgTooManyPending,
		strings.HasPrefix(ce.message, "failed to open stream"):
		retryable = true
	}
	return &Error{code: CodeInternal, message: "peer " + f.cfg.Peer + ": " + ce.message, retryable: retryable, cause: ce}
}
