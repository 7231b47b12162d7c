package call

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/alkdev/alknet/core"

	"github.com/alkdev/alknet/call/internal/schema"
)

// Handler serves a query or mutation.
type Handler func(ctx context.Context, oc *OperationContext, input json.RawMessage) (json.RawMessage, error)

// StreamingHandler serves a subscription; emit sends one call.responded.
type StreamingHandler func(ctx context.Context, oc *OperationContext, input json.RawMessage, emit func(output json.RawMessage) error) error

// Provenance says where a Registration came from.
type Provenance int

// Provenances.
const (
	ProvenanceLocal       Provenance = iota // registered by the node's assembly code
	ProvenanceFromCall                      // imported from another node over alknet/call: a leaf (forwarder)
	ProvenanceSession                       // an agent session's operation: internal only
	ProvenanceFromOpenAPI                   // an HTTP API operation imported from an OpenAPI document: a leaf
	ProvenanceFromMCP                       // an MCP server's tool: a leaf
)

func (p Provenance) String() string {
	switch p {
	case ProvenanceLocal:
		return "local"
	case ProvenanceFromCall:
		return "from_call"
	case ProvenanceSession:
		return "session"
	case ProvenanceFromOpenAPI:
		return "from_openapi"
	case ProvenanceFromMCP:
		return "from_mcp"
	}
	return fmt.Sprintf("Provenance(%d)", int(p))
}

func (p Provenance) leaf() bool { return p != ProvenanceLocal && p != ProvenanceSession }

// CompositionAuthority is the synthetic identity a handler composes as; never a peer.
type CompositionAuthority struct {
	Label     string
	Scopes    []string
	Resources map[string][]string
}

// AsIdentity returns {ID: Label, Scopes, Resources}; nil for a nil authority.
func (a *CompositionAuthority) AsIdentity() *core.Identity {
	if a == nil {
		return nil
	}
	id := core.Identity{ID: a.Label, Scopes: a.Scopes, Resources: a.Resources}.Clone()
	return &id
}

// HandlerRegistration bundles an operation with what its handler may use.
type HandlerRegistration struct {
	Spec         OperationSpec
	Handler      Handler          // query, mutation
	Stream       StreamingHandler // subscription
	Provenance   Provenance
	Authority    *CompositionAuthority
	ScopedEnv    *ScopedEnv
	Capabilities core.Capabilities

	via   []string   // an import's: the nodes behind it, nearest first (ImportFrom sets it)
	typed *typedImpl // Typed and TypedStream's encoder-backed implementation (typed.go)
}

// Registration is a validated HandlerRegistration with compiled schemas. Overlays (sessions,
// imports) hold these and run them with RunRegistration.
type Registration struct {
	HandlerRegistration
	input, output *schema.Schema
	errSchemas    map[string]*schema.Schema
}

// ErrRegistration matches every registration error.
var ErrRegistration = errors.New("call: invalid registration")

// NewRegistration validates r (§8.4) and compiles its schemas.
func NewRegistration(r HandlerRegistration) (*Registration, error) {
	s := r.Spec
	fail := func(format string, a ...any) (*Registration, error) {
		return nil, fmt.Errorf("%w: %s: %s", ErrRegistration, s.Name, fmt.Sprintf(format, a...))
	}
	if !validName(s.Name) {
		return fail("invalid name %q: want <service>/<op>, no leading or trailing '/', no empty segment", s.Name)
	}
	switch t := r.typed; {
	case t != nil && (r.Handler != nil || r.Stream != nil):
		return fail("handler kind mismatch: a registration from Typed or TypedStream takes no Handler or Stream")
	case t != nil && t.call != nil && s.Type != OpQuery && s.Type != OpMutation:
		return fail("handler kind mismatch: Typed registers a query or a mutation, not a %s", s.Type)
	case t != nil && t.stream != nil && s.Type != OpSubscription:
		return fail("handler kind mismatch: TypedStream registers a subscription, not a %s", s.Type)
	}
	switch s.Type {
	case OpQuery, OpMutation:
		if (r.Handler == nil) == (r.typed == nil) || r.Stream != nil {
			return fail("handler kind mismatch: a %s needs exactly Handler", s.Type)
		}
	case OpSubscription:
		if (r.Stream == nil) == (r.typed == nil) || r.Handler != nil {
			return fail("handler kind mismatch: a subscription needs exactly Stream")
		}
	default:
		return fail("unknown operation type %q", s.Type)
	}
	switch s.Visibility {
	case VisibilityExternal, VisibilityInternal:
	default:
		return fail("unknown visibility %q", s.Visibility)
	}
	if r.Provenance.leaf() && (r.Authority != nil || r.ScopedEnv != nil) {
		return fail("a %s registration is a leaf: no Authority or ScopedEnv", r.Provenance)
	}
	if r.Provenance == ProvenanceSession && s.Visibility != VisibilityInternal {
		return fail("session operations are always internal")
	}
	if r.Provenance == ProvenanceLocal && s.AccessControl.RequiredScopesAny != nil && len(s.AccessControl.RequiredScopesAny) == 0 {
		return fail("required_scopes_any is present but empty: no caller could ever satisfy it")
	}
	out := &Registration{HandlerRegistration: r, errSchemas: map[string]*schema.Schema{}}
	var err error
	if out.input, err = schema.Compile(s.InputSchema); err != nil {
		return fail("input_schema: %v", err)
	}
	if out.output, err = schema.Compile(s.OutputSchema); err != nil {
		return fail("output_schema: %v", err)
	}
	for _, d := range s.ErrorSchemas {
		if IsProtocolCode(d.Code) || d.Code == "" {
			return fail("error code %q is empty or a protocol code", d.Code)
		}
		if out.errSchemas[d.Code], err = schema.Compile(d.Schema); err != nil {
			return fail("error_schemas[%s]: %v", d.Code, err)
		}
	}
	return out, nil
}

// RegistryBuilder collects registrations; Build returns the immutable Registry.
type RegistryBuilder struct {
	regs map[string]*Registration
	errs []error
}

// NewRegistryBuilder returns an empty builder.
func NewRegistryBuilder() *RegistryBuilder {
	return &RegistryBuilder{regs: map[string]*Registration{}}
}

// Register validates and adds r; an error is returned at once and recorded for Build.
func (b *RegistryBuilder) Register(r HandlerRegistration) error {
	reg, err := NewRegistration(r)
	if err == nil {
		if _, dup := b.regs[r.Spec.Name]; dup {
			err = fmt.Errorf("%w: %s: already registered", ErrRegistration, r.Spec.Name)
		}
	}
	if err != nil {
		b.errs = append(b.errs, err)
		return err
	}
	b.regs[r.Spec.Name] = reg
	return nil
}

// Build returns the registry, or every recorded error and no registry.
func (b *RegistryBuilder) Build() (*Registry, error) {
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	r := &Registry{regs: make(map[string]*Registration, len(b.regs))}
	for n, reg := range b.regs {
		r.regs[n] = reg
		r.names = append(r.names, n)
	}
	sort.Strings(r.names)
	return r, nil
}

// Registry is an immutable set of registrations (the core registry).
type Registry struct {
	regs  map[string]*Registration
	names []string // sorted
}

// lookup finds a Registration by name.
func (r *Registry) lookup(name string) (*Registration, bool) {
	if r == nil {
		return nil, false
	}
	reg, ok := r.regs[name]
	return reg, ok
}

// Spec returns the spec of a registered operation.
func (r *Registry) Spec(name string) (OperationSpec, bool) {
	reg, ok := r.lookup(name)
	if !ok {
		return OperationSpec{}, false
	}
	return reg.Spec, true
}

// Names returns every registered name, sorted.
func (r *Registry) Names() []string {
	if r == nil {
		return nil
	}
	return slices.Clone(r.names)
}

// Len is the number of registered operations.
func (r *Registry) Len() int {
	if r == nil {
		return 0
	}
	return len(r.names)
}
