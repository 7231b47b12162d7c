package gateway_test

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
	"github.com/alkdev/alknet/adapters/openapi"
	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/call/node"
	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/host"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/core/tlsconf"
)

// logBuffer collects log lines (safe for concurrent use).
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// testNode is a node with demo operations, the gateway on its TLS route and on loopback.
type testNode struct {
	n          *node.Node
	gw         *gateway.Gateway
	loopback   string // http://127.0.0.1:port
	tlsAddr    string
	adminToken string
	userToken  string
	peerKey    *identity.NodeKey // a peer with scope "admin"
	logs       *logBuffer
	cancelled  atomic.Int64 // calls of test/block that saw their context end
	blocking   atomic.Int64 // calls of test/block started
}

type nodeConfig struct {
	gw   gateway.Options
	regs []call.HandlerRegistration
}

func startNode(t *testing.T, nc nodeConfig) *testNode {
	t.Helper()
	tn := &testNode{logs: &logBuffer{}}
	log := slog.New(slog.NewTextHandler(tn.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	admin, adminHash, _ := auth.NewToken()
	user, userHash, _ := auth.NewToken()
	tn.adminToken, tn.userToken = admin, user
	tn.peerKey, _ = identity.Generate()
	cat := catalog.ForNode("test")
	names := catalog.NewNames(cat)
	var pub *openapi.Publisher
	o := nc.gw
	o.Catalog, o.Logger, o.TLSRoute = cat, log, true
	if o.LoopbackListen == "" {
		o.LoopbackListen = "127.0.0.1:0"
	}
	o.Document = func(ctx context.Context, c catalog.Caller, surface string) ([]byte, error) {
		return pub.Document(ctx, c, surface)
	}
	gw, err := gateway.New(o)
	if err != nil {
		t.Fatal(err)
	}
	tn.gw = gw
	regs := append(testOps(tn), nc.regs...)
	n, err := node.Start(node.Options{Demo: true, Registrations: regs, Addons: []node.Addon{cat, gw}, Version: "test",
		Limits: call.Limits{RequestTimeout: 10 * time.Second},
		Host: host.Options{Logger: log, DrainTimeout: 2 * time.Second, Dynamic: config.DynamicConfig{
			APIKeys: []auth.APIKeyEntry{{Prefix: admin[:8], Hash: adminHash, Scopes: []string{"admin"}}, {Prefix: user[:8], Hash: userHash, Scopes: []string{"user"}}},
			Peers:   []auth.PeerEntry{{PeerID: "ops", Fingerprints: []string{tn.peerKey.Fingerprint()}, Scopes: []string{"admin"}, Enabled: true}},
			RateLimits: auth.RateLimits{FailuresPerMinute: 10, FailureBurst: 5},
		}}})
	if err != nil {
		t.Fatal(err)
	}
	tn.n = n
	pub = openapi.NewPublisher(cat, names, func(surface string) string {
		if surface == gateway.SurfaceTLS {
			return "https://" + tn.tlsAddr
		}
		return tn.loopback
	}, log)
	tn.loopback = "http://" + gw.LoopbackAddr().String()
	tn.tlsAddr = n.TCPAddrs()[0].String()
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

// testOps are operations the gateway's rules are checked with.
func testOps(tn *testNode) []call.HandlerRegistration {
	status409 := 409
	q := func(name string, h call.Handler) call.HandlerRegistration {
		return call.HandlerRegistration{Spec: call.OperationSpec{Name: name, Type: call.OpQuery, Visibility: call.VisibilityExternal}, Handler: h}
	}
	adminOp := q("test/admin", func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
		return raw(`{"ok":true}`), nil
	})
	adminOp.Spec.AccessControl.RequiredScopes = []string{"admin"}
	hidden := q("test/hidden", func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) { return raw(`1`), nil })
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
		tn.blocking.Add(1)
		<-ctx.Done()
		tn.cancelled.Add(1)
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
		Stream: func(context.Context, *call.OperationContext, json.RawMessage, func(json.RawMessage) error) error { return nil }}
	return []call.HandlerRegistration{adminOp, hidden, conflict, gone, undeclared, panics, block, failing, secretStream}
}

// httpClient returns a client for one of "h2", "http/1.1" (TLS route, pinned) or "loopback";
// key, if set, is presented as the client certificate.
func (tn *testNode) httpClient(t *testing.T, kind string, key *identity.NodeKey) (*http.Client, string) {
	t.Helper()
	if kind == "loopback" {
		tr := &http.Transport{Proxy: nil}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}, tn.loopback
	}
	tc, err := tlsconf.NewClient(tlsconf.ConnectionCredentials{RemotePin: tn.n.Fingerprint(), LocalKey: key}, kind)
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
	return &http.Client{Transport: tr}, "https://" + tn.tlsAddr
}

type reply struct {
	status int
	header http.Header
	body   []byte
	proto  string
}

func (r reply) problem(t *testing.T) map[string]any {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json (status %d, body %s)", ct, r.status, r.body)
	}
	var p map[string]any
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"type", "title", "status", "code", "message", "retryable", "request_id"} {
		if _, ok := p[k]; !ok {
			t.Fatalf("problem without %q: %s", k, r.body)
		}
	}
	return p
}

func do(t *testing.T, c *http.Client, method, url, body string, hdr map[string]string) reply {
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
	return reply{status: resp.StatusCode, header: resp.Header, body: b, proto: resp.Proto}
}

func bearer(token string) map[string]string { return map[string]string{"Authorization": "Bearer " + token} }

// dialTLS returns a raw TLS connection to the node offering alpn (no HTTP client in between).
func (tn *testNode) dialTLS(t *testing.T, alpn string) *tls.Conn {
	t.Helper()
	tc, err := tlsconf.NewClient(tlsconf.ConnectionCredentials{RemotePin: tn.n.Fingerprint()}, alpn)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", tn.tlsAddr, tc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
