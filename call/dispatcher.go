package call

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/core"

	"github.com/alkdev/alknet/call/internal/jsonscan"

	"github.com/alkdev/alknet/call/internal/wire"
)

// Frame size limits (docs/protocol.md §2): MaxFrameSize defaults to 16 MiB and may be set
// from 1 KiB to the 64 MiB cap.
const (
	MaxFrameSizeCap     = wire.MaxFrameSizeCap
	DefaultMaxFrameSize = wire.DefaultMaxFrameSize
	MinMaxFrameSize     = wire.MinMaxFrameSize
)

// DefaultMaxPartialFrameBytes is the default node-wide budget for bytes held in partial
// frames (Limits.MaxPartialFrameBytes).
const DefaultMaxPartialFrameBytes = wire.DefaultMaxPartialFrameBytes

// Limits are a dispatcher's limits (§17); a zero field takes its default. A reloading node
// replaces them with WithLimits; new connections get the new ones.
type Limits struct {
	// RequestTimeout is the callee's deadline for a root query or mutation, from its arrival
	// (§13); default 30 s. Subscriptions have none. (The caller's own limit is
	// ConnOptions.CallTimeout.)
	RequestTimeout    time.Duration
	StreamIdleTimeout time.Duration // default 10 s
	MaxFrameSize      int           // default 16 MiB, 1 KiB … 64 MiB
	MaxInFlight       int           // inbound per connection; default 1024
	// MaxInFlightTotal bounds inbound requests in flight across every connection that shares
	// the dispatcher (the node); default 16,384. Past it, requests get the same retryable
	// "too many in-flight requests" as past MaxInFlight.
	MaxInFlightTotal int
	// MaxPartialFrameBytes is the node-wide budget for bytes held in partial frames; default
	// 256 MiB, negative: none. Past it the stream (single-stream: the connection) holding the
	// largest partial frame is closed (docs/security.md).
	MaxPartialFrameBytes int64
	MaxCompositionDepth  int // default 32
	// MaxForwardHops bounds the forwarders a request may have come through (its via);
	// default 8, 1…64. Past it a wire root fails with "too many forwarding hops".
	MaxForwardHops int
	// TrustForwardedFor lists the peer ids whose forwarded_for claims are believed: a root
	// whose connection identity is one of them runs as the claimed identity, its scopes
	// capped by the forwarder's (docs/protocol.md §6). Empty: claims are audit metadata only.
	TrustForwardedFor []string
	ValidateOutputs   bool          // check outputs and domain details against their schemas
	SlowHandlerLog    time.Duration // debug-log handlers slower than this; 0 = off
}

// Defaults of Limits.
const (
	DefaultRequestTimeout      = 30 * time.Second
	DefaultStreamIdleTimeout   = 10 * time.Second
	DefaultMaxInFlight         = 1024
	DefaultMaxInFlightTotal    = 16384
	DefaultMaxCompositionDepth = 32
	DefaultMaxForwardHops      = 8
	MaxForwardHopsCap          = 64
)

// ErrConfig matches every configuration error.
var ErrConfig = errors.New("call: invalid configuration")

// WithDefaults fills zero fields.
func (c Limits) WithDefaults() Limits {
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.StreamIdleTimeout == 0 {
		c.StreamIdleTimeout = DefaultStreamIdleTimeout
	}
	if c.MaxFrameSize == 0 {
		c.MaxFrameSize = DefaultMaxFrameSize
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxCompositionDepth == 0 {
		c.MaxCompositionDepth = DefaultMaxCompositionDepth
	}
	if c.MaxInFlightTotal == 0 {
		c.MaxInFlightTotal = DefaultMaxInFlightTotal
	}
	if c.MaxPartialFrameBytes == 0 {
		c.MaxPartialFrameBytes = DefaultMaxPartialFrameBytes
	}
	if c.MaxForwardHops == 0 {
		c.MaxForwardHops = DefaultMaxForwardHops
	}
	return c
}

// Validate checks the limits after defaults.
func (c Limits) Validate() error {
	c = c.WithDefaults()
	var errs []error
	if c.MaxFrameSize < MinMaxFrameSize || c.MaxFrameSize > MaxFrameSizeCap {
		errs = append(errs, fmt.Errorf("max_frame_size: %d is outside %d-%d bytes", c.MaxFrameSize, MinMaxFrameSize, MaxFrameSizeCap))
	}
	if c.RequestTimeout < 0 || c.StreamIdleTimeout < 0 {
		errs = append(errs, errors.New("timeouts must not be negative"))
	}
	if c.MaxInFlight < 0 || c.MaxCompositionDepth < 0 || c.MaxInFlightTotal < 0 {
		errs = append(errs, errors.New("max_in_flight, max_in_flight_total and max_composition_depth must not be negative"))
	}
	if c.MaxForwardHops < 1 || c.MaxForwardHops > MaxForwardHopsCap {
		errs = append(errs, fmt.Errorf("max_forward_hops: %d is outside 1-%d", c.MaxForwardHops, MaxForwardHopsCap))
	}
	if c.MaxPartialFrameBytes > 0 && c.MaxPartialFrameBytes < int64(c.MaxFrameSize) {
		errs = append(errs, fmt.Errorf("max_partial_frame_bytes: %d is less than max_frame_size %d", c.MaxPartialFrameBytes, c.MaxFrameSize))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return nil
}

// Dispatcher runs operations of a registry for every front end: wire connections (through
// Conn) and in-process ingresses (HTTP, MCP, the Node binding, tests).
type Dispatcher struct {
	reg       *Registry
	cfg       Limits
	ids       core.IdentityProvider
	log       *slog.Logger
	ownership OwnershipProvider
	sessions  SessionOverlaySource
	observer  Observer
	nodeFP    string
	peers     *PeerSet

	// Node-wide state, shared by the dispatchers WithLimits derives from this one.
	budget   *wire.FrameBudget // bytes held in partial frames
	inflight *atomic.Int64     // inbound requests in flight on every connection
}

// Observer receives call metrics (the CLI exports them to Prometheus). Implementations must
// be safe for concurrent use and must not block. CallDone's op is a registered operation's
// name or OtherOperationLabel, never a name taken from the wire unchecked.
type Observer interface {
	// CallDone reports a served call's outcome: code is "" on success, ObservedAborted when
	// the caller gave up on it (call.aborted, a cancelled stream, a closed connection), else
	// the error code sent (TIMEOUT when the request's deadline passed).
	CallDone(op, code string, d time.Duration)
	StreamOpened()
	StreamClosed()
}

// ObservedAborted is the code Observer.CallDone reports for a call its caller gave up on: not an
// error of the node's, so kept apart from INTERNAL (metrics would page for nothing).
const ObservedAborted = "ABORTED"

// WithLimits returns a dispatcher over the same registry and options with other limits (for
// reloads: new connections use the new limits; node-wide budgets stay shared).
func (d *Dispatcher) WithLimits(cfg Limits) (*Dispatcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := *d
	c.cfg = cfg.WithDefaults()
	c.budget.SetLimit(c.cfg.MaxPartialFrameBytes)
	return &c, nil
}

func (d *Dispatcher) callDone(op string, ce *Error, start time.Time) {
	if d.observer == nil {
		return
	}
	code := ""
	switch {
	case ce == nil:
	case ce.aborted || ce.code == CodeInternal && ce.message == msgRequestCancelled:
		code = ObservedAborted
	default:
		code = ce.code
	}
	d.observer.CallDone(op, code, time.Since(start))
}

func (d *Dispatcher) streamOpened() {
	if d.observer != nil {
		d.observer.StreamOpened()
	}
}

func (d *Dispatcher) streamClosed() {
	if d.observer != nil {
		d.observer.StreamClosed()
	}
}

// Options configure a Dispatcher. The zero value is a dispatcher with default limits, no
// token resolution, the default logger and no observer: enough for a pure client.
type Options struct {
	Limits Limits
	// Identities resolves per-request tokens (§15.6). Pass core's Authenticator, so every
	// attempt is limited and audited; nil: tokens never resolve.
	Identities core.IdentityProvider
	Logger     *slog.Logger         // nil: slog.Default()
	Observer   Observer             // call metrics; nil: none
	Ownership  OwnershipProvider    // resource ownership for access control (§9.3); nil: none
	Sessions   SessionOverlaySource // agent sessions' overlays (§11.4); nil: none
	// NodeFingerprint is this node's key fingerprint (ed25519:<hex>, in every TLS mode): a
	// request whose via holds it is a forwarding loop. "": the loop checks are skipped.
	NodeFingerprint string
	// Peers is the hub's set of peer layers (PeerSet): in every root's composite, and its
	// External imports reachable from the wire after the core registry. nil: none.
	Peers *PeerSet
}

// NewDispatcher returns a dispatcher over r (nil: an empty registry, for pure clients).
func NewDispatcher(r *Registry, o Options) (*Dispatcher, error) {
	if err := o.Limits.Validate(); err != nil {
		return nil, err
	}
	if r == nil {
		r = &Registry{regs: map[string]*Registration{}}
	}
	d := &Dispatcher{reg: r, cfg: o.Limits.WithDefaults(), ids: o.Identities, log: logger(o.Logger),
		observer: o.Observer, ownership: o.Ownership, sessions: o.Sessions, nodeFP: o.NodeFingerprint, peers: o.Peers}
	d.budget = wire.NewFrameBudget(d.cfg.MaxPartialFrameBytes, d.log)
	d.inflight = new(atomic.Int64)
	return d, nil
}

var defaultDispatcher = sync.OnceValue(func() *Dispatcher {
	d, _ := NewDispatcher(nil, Options{})
	return d
})

// Limits returns the dispatcher's effective limits (defaults filled in).
func (d *Dispatcher) Limits() Limits { return d.cfg }

// reserveInFlight takes a node-wide in-flight slot; false when MaxInFlightTotal is reached.
func (d *Dispatcher) reserveInFlight() bool {
	if d.inflight.Add(1) > int64(d.cfg.MaxInFlightTotal) {
		d.inflight.Add(-1)
		return false
	}
	return true
}

// HoldBytes charges n bytes a front end holds before a call starts (an HTTP body as it
// arrives) to the node-wide partial-frame budget (Limits.MaxPartialFrameBytes): false, with
// nothing charged, past it. ReleaseBytes gives them back.
func (d *Dispatcher) HoldBytes(n int64) bool { return d.budget.Reserve(n) }

// ReleaseBytes releases bytes charged by HoldBytes.
func (d *Dispatcher) ReleaseBytes(n int64) { d.budget.Unreserve(n) }

// PartialFrameBytes returns the bytes held in partial frames now, node-wide (the budget is
// Limits.MaxPartialFrameBytes).
func (d *Dispatcher) PartialFrameBytes() int64 { return d.budget.Held() }

// InFlight returns the inbound requests in flight on every connection of the dispatcher.
func (d *Dispatcher) InFlight() int64 { return d.inflight.Load() }

// Registry returns the core registry.
func (d *Dispatcher) Registry() *Registry { return d.reg }

// Resolve applies the per-request token rule (§15.6): a token that resolves replaces the
// connection identity for one request; one that does not falls back silently.
func (d *Dispatcher) Resolve(ctx context.Context, conn *core.Identity, token string) *core.Identity {
	if d.ids != nil {
		if id, ok := d.ids.FromToken(ctx, token); ok {
			return &id
		}
	}
	return conn
}

// resolveRequest is Resolve for a request that may carry no token at all. rejected reports a
// token that did not resolve (unknown, revoked, expired, or its address blocked).
func (d *Dispatcher) resolveRequest(ctx context.Context, conn *core.Identity, token string, has bool) (id *core.Identity, rejected bool) {
	if !has {
		return conn, false
	}
	if d.ids != nil {
		if id, ok := d.ids.FromToken(ctx, token); ok {
			return &id, false
		}
	}
	return conn, true
}

// Visible lists the External core operations and exposed imports whose access control
// admits id (no resource id), sorted by name, each name once (§6.1).
func (d *Dispatcher) Visible(ctx context.Context, id *core.Identity) []OperationSpec {
	regs := d.visible(ctx, id)
	out := make([]OperationSpec, len(regs))
	for i, r := range regs {
		out[i] = r.Spec
	}
	return out
}

// visible is Visible with the registrations (an import's via is on its registration).
func (d *Dispatcher) visible(ctx context.Context, id *core.Identity) []*Registration {
	var out []*Registration
	for _, reg := range d.rootRegistrations() {
		if checkAccess(ctx, &reg.Spec, id, d.ownership, json.RawMessage("null"), d.log.Warn) == nil {
			out = append(out, reg)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Spec.Name < out[j].Spec.Name })
	return out
}

// rootRegistrations lists what a root request can reach: the External core operations in
// name order, then the exposed imports of the PeerSet in attach order, each name once (the
// one rootRegistration finds).
func (d *Dispatcher) rootRegistrations() []*Registration {
	var out []*Registration
	for _, n := range d.reg.names {
		if reg := d.reg.regs[n]; reg.Spec.Visibility == VisibilityExternal {
			out = append(out, reg)
		}
	}
	if d.peers == nil {
		return out
	}
	seen := map[string]bool{}
	for _, l := range d.peers.snapshot() {
		for _, spec := range l.ov.Specs() {
			if _, core := d.reg.lookup(spec.Name); core || seen[spec.Name] || spec.Visibility != VisibilityExternal {
				continue
			}
			seen[spec.Name] = true
			if reg, ok := l.ov.lookup(spec.Name); ok {
				out = append(out, reg)
			}
		}
	}
	return out
}

// rootInput is one root request, from the wire or an ingress.
type rootInput struct {
	id       string
	op       string
	input    json.RawMessage
	identity *core.Identity // resolved
	// tokenRejected: the request's auth_token did not resolve; if that leaves it anonymous,
	// access control says so instead of "authentication required" (docs/protocol.md §15.6).
	tokenRejected bool
	forwardedFor  *core.Identity
	byToken       bool // identity came from the request's auth_token, not the connection
	via           []string
	peers         []peerLayer
	// ownCtx: the parent context is this request's own, already cancellable and with the
	// deadline of §13 (see requestContext); startRoot uses it as it is.
	ownCtx bool
}

// root is a root request ready to run. Its context, environment and node live in the same
// allocation.
type root struct {
	reg    *Registration
	oc     *OperationContext
	input  json.RawMessage
	ctx    context.Context
	cancel context.CancelFunc

	opCtx OperationContext
	env   composite
	node  reqNode
}

// lookupRoot finds a wire-reachable registration: only External core operations (§11.4.5).
func (d *Dispatcher) lookupRoot(op string) (*Registration, *Error) {
	reg := d.rootRegistration(op)
	if reg == nil {
		return nil, errNotFound(stripSlash(op))
	}
	return reg, nil
}

// rootRegistration returns the registration a root request for op reaches, or nil: an
// External core operation, else (a core name is never looked further) an exposed import of
// the PeerSet, first in attach order (§11.4.5).
func (d *Dispatcher) rootRegistration(op string) *Registration {
	name := stripSlash(op)
	reg, ok := d.reg.lookup(name)
	if ok {
		if reg.Spec.Visibility != VisibilityExternal {
			return nil
		}
		return reg
	}
	if d.peers != nil {
		return d.peers.exposed(name)
	}
	return nil
}

// RootSpecs lists what a root request can reach, whoever asks: the External core operations in
// name order, then the exposed imports of the PeerSet in attach order, each name once (the one
// a root reaches). Front ends name their tools and routes from it (docs/http.md §2.1).
func (d *Dispatcher) RootSpecs() []OperationSpec {
	regs := d.rootRegistrations()
	out := make([]OperationSpec, len(regs))
	for i, r := range regs {
		out[i] = r.Spec
	}
	return out
}

// RootSpec returns the operation a root request for name reaches (the lookup of Call,
// Subscribe and the wire), without access control.
func (d *Dispatcher) RootSpec(name string) (OperationSpec, bool) {
	if reg := d.rootRegistration(name); reg != nil {
		return reg.Spec, true
	}
	return OperationSpec{}, false
}

// Peers returns the dispatcher's PeerSet (nil: none).
func (d *Dispatcher) Peers() *PeerSet { return d.peers }

// OtherOperationLabel is the operation an Observer sees for requests that reached no
// registration (unknown or internal names): peers cannot grow the metrics' label set.
const OtherOperationLabel = "other"

// requestContext returns the context of one root request for reg (nil: none, the request
// fails at once): cancellable, and with the deadline of §13 unless it is a subscription, in a
// single context (each derived layer would cost allocations and a registration with its
// parent on every call).
//
// timeoutMS is the caller's budget from the wire (0: none sent): a query or mutation gets
// the smaller of it and RequestTimeout, a subscription it alone.
func (d *Dispatcher) requestContext(base context.Context, reg *Registration, timeoutMS int64) (context.Context, context.CancelFunc) {
	budget := time.Duration(timeoutMS) * time.Millisecond
	if reg != nil && reg.Spec.Type == OpSubscription {
		if budget > 0 {
			return context.WithTimeout(base, budget)
		}
		return context.WithCancel(base)
	}
	if budget > 0 && budget < d.cfg.RequestTimeout {
		return context.WithTimeout(base, budget)
	}
	return context.WithTimeout(base, d.cfg.RequestTimeout)
}

// checkVia applies the hop and loop checks of a wire root (docs/protocol.md §7), before
// anything is looked up: too many entries first, then this node's own fingerprint.
func (d *Dispatcher) checkVia(via []string, n int) *Error {
	if n > d.cfg.MaxForwardHops {
		return &Error{code: CodeInternal, message: fmt.Sprintf("too many forwarding hops: %d (max %d)", n, d.cfg.MaxForwardHops)}
	}
	if d.nodeFP != "" && slices.Contains(via, d.nodeFP) {
		return errLoop(d.nodeFP, via)
	}
	return nil
}

// delegate is the identity a trusted forwarder's claim runs as: the claimed ID, its scopes
// and resources intersected with the forwarder's own (a forwarder never grants more).
func delegate(claimed, direct core.Identity) core.Identity {
	out := core.Identity{ID: claimed.ID}
	for _, sc := range claimed.Scopes {
		if slices.Contains(direct.Scopes, sc) {
			out.Scopes = append(out.Scopes, sc)
		}
	}
	for typ, acts := range claimed.Resources {
		for _, a := range acts {
			if slices.Contains(direct.Resources[typ], a) {
				if out.Resources == nil {
					out.Resources = map[string][]string{}
				}
				out.Resources[typ] = append(out.Resources[typ], a)
			}
		}
	}
	return out
}

// errLoop is the loop error of §7: this node (or the forwarder's remote) is already on the path.
func errLoop(fp string, via []string) *Error {
	details, _ := json.Marshal(map[string][]string{"via": via})
	return &Error{code: CodeInternal, message: "forwarding loop: " + fp + " is already on the path", details: details}
}

// startRoot runs the checks before a root handler (visibility → access → input) and builds
// its context (§10.2) with the deadline of §13.
func (d *Dispatcher) startRoot(parent context.Context, in rootInput) (*root, *Error) {
	reg, ce := d.lookupRoot(in.op)
	if ce != nil {
		return nil, ce
	}
	if len(in.input) == 0 {
		in.input = json.RawMessage("null")
	}
	// A forwarded_for claim is believed only from a trusted forwarder's connection identity
	// (never a token's): the root then runs as the claimed identity, capped by the
	// forwarder's. Untrusted claims stay in ForwardedFor, audit only (docs/protocol.md §6).
	if in.identity != nil && !in.byToken && (in.forwardedFor != nil || len(in.via) > 0) &&
		slices.Contains(d.cfg.TrustForwardedFor, in.identity.ID) {
		direct := in.identity
		in.identity = nil
		claimed := ""
		if in.forwardedFor != nil {
			del := delegate(*in.forwardedFor, *direct)
			in.identity, claimed = &del, del.ID
		}
		d.log.Info("delegated identity", "direct", direct.ID, "claimed", claimed, "trusted", true, "request_id", in.id)
	}
	if ce := checkAccess(parent, &reg.Spec, in.identity, d.ownership, in.input, d.log.Warn); ce != nil {
		if in.identity == nil && in.tokenRejected && ce.message == msgAuthRequired {
			ce = &Error{code: CodeForbidden, message: msgTokenRejected}
		}
		return nil, ce
	}
	if ce := validateInput(reg, in.input); ce != nil {
		return nil, ce
	}
	origin := in.identity
	peers := in.peers
	if d.peers != nil {
		peers = d.peers.layersFor(peers)
	}
	r := &root{reg: reg, input: in.input, env: composite{d: d, peers: peers}}
	r.opCtx = OperationContext{
		RequestID:    in.id,
		Identity:     in.identity,
		Authority:    reg.Authority,
		ForwardedFor: in.forwardedFor,
		Origin:       origin,
		Capabilities: reg.Capabilities,
		Metadata:     map[string]any{},
		Env:          &r.env,
		AbortPolicy:  AbortDependents,
		Ownership:    d.ownership,
		node:         &r.node,
		via:          in.via,
	}
	oc := &r.opCtx
	r.oc = oc
	if reg.ScopedEnv != nil {
		oc.ScopedEnv = *reg.ScopedEnv
	}
	switch {
	case in.ownCtx:
		r.ctx, r.cancel = parent, func() {}
	case reg.Spec.Type == OpSubscription:
		r.ctx, r.cancel = context.WithCancel(parent)
	default:
		r.ctx, r.cancel = context.WithTimeout(parent, d.cfg.RequestTimeout)
	}
	return r, nil
}

// runStream calls a subscription handler with panic recovery; emit is wrapped so it fails
// once ctx is done or the handler has returned.
func (d *Dispatcher) runStream(ctx context.Context, oc *OperationContext, reg *Registration, input json.RawMessage, emit func(json.RawMessage) error) (ce *Error) {
	var mu sync.Mutex
	returned := false
	trusted := reg.typed != nil // items encoded by this package (typed.go)
	guarded := func(out json.RawMessage) error {
		mu.Lock()
		r := returned
		mu.Unlock()
		if r {
			return errInternal("emit after the handler returned", nil)
		}
		if err := ctx.Err(); err != nil {
			return errCancelled(err)
		}
		if len(out) == 0 {
			out = json.RawMessage("null")
		}
		if !trusted && !jsonscan.Valid(out) {
			return errInternal(msgInternal, errors.New("output is not valid JSON"))
		}
		if d.cfg.ValidateOutputs {
			if err := reg.output.Validate(out); err != nil {
				return errInternal(msgOutputMismatch, err)
			}
		}
		return emit(out)
	}
	defer func() {
		mu.Lock()
		returned = true
		mu.Unlock()
		if v := recover(); v != nil {
			d.log.Error("handler panic", "op", reg.Spec.Name, "request_id", oc.RequestID, "value", fmt.Sprint(v))
			ce = errInternal(msgInternal, fmt.Errorf("panic: %v", v))
		}
	}()
	run := reg.Stream
	if trusted {
		run = reg.typed.stream
	}
	if err := run(ctx, oc, input, guarded); err != nil {
		return d.mapError(reg, oc, err)
	}
	return nil
}
