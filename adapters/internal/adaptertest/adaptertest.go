// Package adaptertest starts nodes with the HTTP gateway and MCP for the adapters' tests:
// demo operations plus test operations that exercise every error path.
package adaptertest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/adapters/catalog"
	"github.com/alkdev/alknet/adapters/gateway"
	"github.com/alkdev/alknet/adapters/mcp"
	"github.com/alkdev/alknet/adapters/openapi"
	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/call/node"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/host"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/core/tlsconf"
)

// logBuffer collects log lines (safe for concurrent use).
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// testNode is a node with demo operations, the gateway on its TLS route and on loopback.
type Node struct {
	N          *node.Node
	GW         *gateway.Gateway
	Loopback   string // http://127.0.0.1:port
	TLSAddr    string
	AdminToken string
	UserToken  string
	// ScopedToken is an API key with the scopes "pets" and "tools" (imports' required scopes).
	ScopedToken string
	PeerKey     *identity.NodeKey // a peer with scope "admin"
	Logs        *LogBuffer
	Cancelled   atomic.Int64 // calls of test/block that saw their context end
	Blocking    atomic.Int64
	Projection  *mcp.Projection // with Config.MCP // calls of test/block started
}

type Config struct {
	Gateway gateway.Options
	Regs    []call.HandlerRegistration
	MCP     *mcp.ServerOptions // nil: no /mcp; Catalog, Names and Logger are filled in
	Peers   *call.PeerSet      // a hub's peer set
	Demo    *bool              // nil: serve the demo operations
	Limits  config.Limits      // the endpoint's limits (e.g. a short single-stream idle timeout)
}

func Start(t *testing.T, nc Config) *Node {
	t.Helper()
	tn := &Node{Logs: &LogBuffer{}}
	log := slog.New(slog.NewTextHandler(tn.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	admin, adminHash, _ := auth.NewToken()
	user, userHash, _ := auth.NewToken()
	scoped, scopedHash, _ := auth.NewToken()
	tn.ScopedToken = scoped
	tn.AdminToken, tn.UserToken = admin, user
	tn.PeerKey, _ = identity.Generate()
	cat := catalog.ForNode("test")
	names := catalog.NewNames(cat)
	var pub *openapi.Publisher
	o := nc.Gateway
	o.Catalog, o.Logger, o.TLSRoute = cat, log, true
	if o.LoopbackListen == "" {
		o.LoopbackListen = "127.0.0.1:0"
	}
	o.Document = func(ctx context.Context, c catalog.Caller, surface string) ([]byte, error) {
		return pub.Document(ctx, c, surface)
	}
	if nc.MCP != nil {
		mo := *nc.MCP
		mo.Catalog, mo.Names, mo.Logger = cat, names, log
		tn.Projection = mcp.NewProjection(mo)
		t.Cleanup(tn.Projection.Close)
		o.MCP = tn.Projection.Handler()
	}
	gw, err := gateway.New(o)
	if err != nil {
		t.Fatal(err)
	}
	tn.GW = gw
	regs := append(testOps(tn), nc.Regs...)
	demo := nc.Demo == nil || *nc.Demo
	n, err := node.Start(node.Options{Demo: demo, Registrations: regs, Peers: nc.Peers, Addons: []node.Addon{cat, gw}, Version: "test",
		Limits: call.Limits{RequestTimeout: 10 * time.Second},
		Host: host.Options{Logger: log, DrainTimeout: 2 * time.Second, Limits: nc.Limits, Dynamic: config.DynamicConfig{
			APIKeys: []auth.APIKeyEntry{{Prefix: admin[:8], Hash: adminHash, Scopes: []string{"admin"}}, {Prefix: user[:8], Hash: userHash, Scopes: []string{"user"}},
				{Prefix: scoped[:8], Hash: scopedHash, Scopes: []string{"pets", "tools"}}},
			Peers:      []auth.PeerEntry{{PeerID: "ops", Fingerprints: []string{tn.PeerKey.Fingerprint()}, Scopes: []string{"admin"}, Enabled: true}},
			RateLimits: auth.RateLimits{FailuresPerMinute: 10, FailureBurst: 5},
		}}})
	if err != nil {
		t.Fatal(err)
	}
	tn.N = n
	pub = openapi.NewPublisher(cat, names, func(surface string) string {
		if surface == gateway.SurfaceTLS {
			return "https://" + tn.TLSAddr
		}
		return tn.Loopback
	}, log)
	tn.Loopback = "http://" + gw.LoopbackAddr().String()
	tn.TLSAddr = n.TCPAddrs()[0].String()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return tn
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// CallAs calls op on d as id, the way an ingress does, within 10 s; a failure is its *call.Error.
func CallAs(t *testing.T, d *call.Dispatcher, id *core.Identity, op, in string) (string, *call.Error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := d.Call(ctx, call.RootRequest{Operation: op, Input: json.RawMessage(in), ConnIdentity: id})
	if err != nil {
		var ce *call.Error
		if !errors.As(err, &ce) {
			t.Fatalf("%s: %v", op, err)
		}
		return "", ce
	}
	return string(out), nil
}

// testOps are operations the gateway's rules are checked with.
func testOps(tn *Node) []call.HandlerRegistration {
	status409 := 409
	q := func(name string, h call.Handler) call.HandlerRegistration {
		return call.HandlerRegistration{Spec: call.OperationSpec{Name: name, Type: call.OpQuery, Visibility: call.VisibilityExternal}, Handler: h}
	}
	adminOp := q("test/admin", func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
		return raw(`{"ok":true}`), nil
	})
	adminOp.Spec.AccessControl.RequiredScopes = []string{"admin"}
	hidden := q("test/hidden", func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
		return raw(`1`), nil
	})
	hidden.Spec.Visibility = call.VisibilityInternal
	conflict := q("test/conflict", func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
		return nil, call.NewError("CONFLICT", "already there")
	})
	conflict.Spec.ErrorSchemas = []call.ErrorDefinition{{Code: "CONFLICT", HTTPStatus: &status409}, {Code: "GONE"}}
	gone := q("test/gone", func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
		return nil, call.NewError("GONE", "went away")
	})
	gone.Spec.ErrorSchemas = []call.ErrorDefinition{{Code: "GONE"}}
	undeclared := q("test/undeclared", func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
		return nil, call.NewError("SURPRISE", "not declared")
	})
	panics := q("test/panic", func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
		panic("boom")
	})
	block := q("test/block", func(ctx context.Context, _ *call.OperationContext, _ json.RawMessage) (json.RawMessage, error) {
		tn.Blocking.Add(1)
		<-ctx.Done()
		tn.Cancelled.Add(1)
		return nil, ctx.Err()
	})
	failing := call.HandlerRegistration{Spec: call.OperationSpec{Name: "test/fail-after-one", Type: call.OpSubscription, Visibility: call.VisibilityExternal},
		Stream: func(_ context.Context, _ *call.OperationContext, _ json.RawMessage, emit func(json.RawMessage) error) error {
			if err := emit(raw(`{"n":1}`)); err != nil {
				return err
			}
			return call.NewError(call.CodeInternal, "broke")
		}}
	secretStream := call.HandlerRegistration{Spec: call.OperationSpec{Name: "test/admin-stream", Type: call.OpSubscription, Visibility: call.VisibilityExternal,
		AccessControl: call.AccessControl{RequiredScopes: []string{"admin"}}},
		Stream: func(context.Context, *call.OperationContext, json.RawMessage, func(json.RawMessage) error) error {
			return nil
		}}
	big := q("test/big", func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
		return json.Marshal(strings.Repeat("x", 16<<20)) // more than the socket buffers hold
	})
	offSchema := q("test/off-schema", func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
		return raw(`{"y":1}`), nil // outputs are not validated by default: Prism sees the violation
	})
	offSchema.Spec.OutputSchema = raw(`{"type":"object","required":["x"],"properties":{"x":{"type":"integer"}}}`)
	return append([]call.HandlerRegistration{adminOp, hidden, conflict, gone, undeclared, panics, block, failing, secretStream, offSchema, big}, SchemaOps()...)
}

// SchemaOps have the schemas the published documents must translate (docs/http.md §2.5,
// checklist 13): $defs, a non-object input, type arrays, draft-07 tuples and dependencies, and
// one that cannot be published ($id).
func SchemaOps() []call.HandlerRegistration {
	echo := func(name, in, out string) call.HandlerRegistration {
		return call.HandlerRegistration{Spec: call.OperationSpec{Name: name, Type: call.OpQuery, Visibility: call.VisibilityExternal,
			Description: "Schema fixture: " + name, InputSchema: raw(in), OutputSchema: raw(out)},
			Handler: func(_ context.Context, _ *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
				return in, nil
			}}
	}
	return []call.HandlerRegistration{
		echo("schema/defs", `{"type":"object","properties":{"tree":{"$ref":"#/$defs/node"}},"$defs":{"node":{"type":"object","properties":{"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}}}}}`,
			`{"$ref":"#/$defs/node","$defs":{"node":{"type":"object","properties":{"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}}}}}`),
		echo("schema/number", `{"type":"number"}`, `{"type":["number","null"]}`),
		echo("schema/draft7", `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"pair":{"type":"array","items":[{"type":"string"},{"type":"integer"}],"additionalItems":false}},"dependencies":{"a":["pair"],"b":{"required":["pair"]}},"definitions":{"x":{"type":"string"}}}`,
			`{"$schema":"http://json-schema.org/draft-07/schema#","type":"object"}`),
		echo("schema/anchored", `{"$id":"https://example.com/s.json","type":"object"}`, `{}`),
	}
}

// httpClient returns a client for one of "h2", "http/1.1" (TLS route, pinned) or "loopback";
// key, if set, is presented as the client certificate.
func (tn *Node) HTTPClient(t *testing.T, kind string, key *identity.NodeKey) (*http.Client, string) {
	t.Helper()
	if kind == "loopback" {
		tr := &http.Transport{Proxy: nil}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}, tn.Loopback
	}
	tc, err := tlsconf.NewClient(tlsconf.ConnectionCredentials{RemotePin: tn.N.Fingerprint(), LocalKey: key}, kind)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{Proxy: nil, TLSClientConfig: tc, ForceAttemptHTTP2: kind == "h2"}
	if kind == "h2" {
		var p http.Protocols
		p.SetHTTP2(true)
		tr.Protocols = &p
	} else {
		var p http.Protocols
		p.SetHTTP1(true)
		tr.Protocols = &p
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}, "https://" + tn.TLSAddr
}

type Reply struct {
	Status int
	Header http.Header
	Body   []byte
	Proto  string
}

// Problem checks that r is problem+json with every field and returns it.
func (r Reply) Problem(t *testing.T) map[string]any {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json (status %d, body %s)", ct, r.Status, r.Body)
	}
	var p map[string]any
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"type", "title", "status", "code", "message", "retryable", "request_id"} {
		if _, ok := p[k]; !ok {
			t.Fatalf("problem without %q: %s", k, r.Body)
		}
	}
	return p
}

func Do(t *testing.T, c *http.Client, method, url, body string, hdr map[string]string) Reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return Reply{Status: resp.StatusCode, Header: resp.Header, Body: b, Proto: resp.Proto}
}

func Bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

// dialTLS returns a raw TLS connection to the node offering alpn (no HTTP client in between).
func (tn *Node) DialTLS(t *testing.T, alpn string) *tls.Conn {
	t.Helper()
	tc, err := tlsconf.NewClient(tlsconf.ConnectionCredentials{RemotePin: tn.N.Fingerprint()}, alpn)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", tn.TLSAddr, tc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
