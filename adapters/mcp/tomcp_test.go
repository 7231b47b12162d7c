package mcp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/alkdev/alknet/adapters/catalog"
	"github.com/alkdev/alknet/adapters/internal/adaptertest"
	"github.com/alkdev/alknet/adapters/mcp"
	"github.com/alkdev/alknet/call"
)

// square has a non-object input: its tool wraps it as {"input": …} (docs/mcp.md §6.1.2).
func square() call.HandlerRegistration {
	return call.HandlerRegistration{Spec: call.OperationSpec{Name: "test/square", Type: call.OpQuery, Visibility: call.VisibilityExternal,
		InputSchema: json.RawMessage(`{"type":"number"}`), OutputSchema: json.RawMessage(`{"type":"number"}`)},
		Handler: func(_ context.Context, _ *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
			var x float64
			if err := json.Unmarshal(in, &x); err != nil {
				return nil, err
			}
			return json.Marshal(x * x)
		}}
}

func startMCPNode(t *testing.T, o mcp.ServerOptions) *adaptertest.Node {
	t.Helper()
	if o.Exclude == nil {
		o.Exclude = []string{"demo/compose"}
	}
	return adaptertest.Start(t, adaptertest.Config{MCP: &o, Regs: []call.HandlerRegistration{square()}})
}

// bearerTransport adds a Bearer token to every request.
type bearerTransport struct {
	token string
	base  http.RoundTripper
}

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if b.token != "" {
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return b.base.RoundTrip(r)
}

func httpTransport(t *testing.T, tn *adaptertest.Node, token string) sdk.Transport {
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	return &sdk.StreamableClientTransport{Endpoint: tn.Loopback + "/mcp", HTTPClient: &http.Client{Transport: bearerTransport{token, tr}}}
}

// connect opens a client session of version over kind: "stdio" (the projection on an
// in-memory pipe, as alknet mcp serves it), "stateful" or "stateless" HTTP.
func connect(t *testing.T, tn *adaptertest.Node, kind, version, token string, opts *sdk.ClientOptions) *sdk.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var tr sdk.Transport
	if kind == "stdio" {
		srv, err := tn.Projection.Server(ctx, catalog.Caller{})
		if err != nil {
			t.Fatal(err)
		}
		st, ct := sdk.NewInMemoryTransports()
		ss, err := srv.Connect(context.Background(), st, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ss.Close() })
		tr = ct
	} else {
		tr = httpTransport(t, tn, token)
	}
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, opts).Connect(ctx, tr, &sdk.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("%s %s: %v", kind, version, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func text(r *sdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range r.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// docs/mcp.md §6.1, checklists 22 and 27.
func TestTools(t *testing.T) {
	stateful := startMCPNode(t, mcp.ServerOptions{})
	stateless := startMCPNode(t, mcp.ServerOptions{Stateless: true})
	for _, kind := range []string{"stdio", "stateful", "stateless"} {
		for _, version := range []string{"", "2025-11-25", "2025-06-18"} {
			t.Run(kind+"/"+version, func(t *testing.T) {
				tn := stateful
				if kind == "stateless" {
					tn = stateless
				}
				cs := connect(t, tn, kind, version, "", nil)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				init := cs.InitializeResult()
				want := version
				if want == "" {
					want = "2025-11-25" // a default client negotiates down from the SDK's newer default
				}
				if init.ProtocolVersion != want {
					t.Fatalf("negotiated %q, want %q", init.ProtocolVersion, want)
				}
				if c := init.Capabilities; c.Tools == nil || !c.Tools.ListChanged || c.Logging != nil || c.Prompts != nil || c.Resources != nil {
					t.Fatalf("capabilities %+v", c)
				}
				list, err := cs.ListTools(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				tools := map[string]*sdk.Tool{}
				for _, tl := range list.Tools {
					tools[tl.Name] = tl
				}
				for _, name := range []string{"demo_add", "demo_echo", "test_square", "node_info"} {
					if tools[name] == nil {
						t.Fatalf("no tool %s in %v", name, keys(tools))
					}
				}
				for _, name := range []string{"demo_ticker", "demo_compose", "test_admin"} {
					if tools[name] != nil {
						t.Fatalf("tool %s listed (subscription, excluded or hidden)", name)
					}
				}
				add := tools["demo_add"]
				if add.Meta["alknet/op"] != "demo/add" || add.Annotations == nil || !add.Annotations.ReadOnlyHint || add.OutputSchema == nil {
					t.Fatalf("demo_add: %+v", add)
				}
				res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "demo_add", Arguments: map[string]any{"a": 2, "b": 40}})
				if err != nil || res.IsError {
					t.Fatalf("%v %+v", err, res)
				}
				if sc, _ := json.Marshal(res.StructuredContent); string(sc) != `{"sum":42}` || text(res) != `{"sum":42}` {
					t.Fatalf("structured %s, text %s", sc, text(res))
				}
				res, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "demo_add", Arguments: map[string]any{"a": "x", "b": 1}})
				if err != nil || !res.IsError || !strings.HasPrefix(text(res), "INVALID_INPUT: ") || res.Meta["alknet/error"] == nil {
					t.Fatalf("bad arguments: %v %+v", err, res)
				}
				res, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "test_square", Arguments: map[string]any{"input": 3}})
				if err != nil || res.IsError || text(res) != "9" {
					t.Fatalf("wrapped input: %v %+v", err, res)
				}
				for _, name := range []string{"nope", "test_admin"} {
					_, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: map[string]any{}})
					if err == nil || !strings.Contains(err.Error(), "-32602") && !strings.Contains(strings.ToLower(err.Error()), "unknown tool") {
						t.Fatalf("%s: %v, want -32602", name, err)
					}
				}
			})
		}
	}
}

func keys(m map[string]*sdk.Tool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// docs/mcp.md §6.1.5, checklist 23: a cancelled tool call aborts its operation.
func TestCancel(t *testing.T) {
	tn := startMCPNode(t, mcp.ServerOptions{})
	for i, kind := range []string{"stdio", "stateful"} {
		cs := connect(t, tn, kind, "", "", nil)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			deadline := time.Now().Add(5 * time.Second)
			for tn.Blocking.Load() != int64(i+1) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
		}()
		_, _ = cs.CallTool(ctx, &sdk.CallToolParams{Name: "test_block", Arguments: map[string]any{}})
		deadline := time.Now().Add(time.Second)
		for tn.Cancelled.Load() != int64(i+1) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the operation was not cancelled within 1 s", kind)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// docs/mcp.md §6.2, checklist 24.
func TestSessions(t *testing.T) {
	tn := startMCPNode(t, mcp.ServerOptions{MaxSessionsPerIdentity: 16, SessionTimeout: 2 * time.Second})
	first := connect(t, tn, "stateful", "", tn.AdminToken, nil)
	// Another identity on the session: 403, not passed on.
	post := func(sessionID, token, body string) (int, string) {
		req, _ := http.NewRequest("POST", tn.Loopback+"/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Session-Id", sessionID)
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	ping := `{"jsonrpc":"2.0","id":99,"method":"ping"}`
	for _, token := range []string{tn.UserToken, ""} {
		if status, body := post(first.ID(), token, ping); status != 403 || !strings.Contains(body, "session identity mismatch") {
			t.Fatalf("other identity: %d %s", status, body)
		}
	}
	if status, body := post(first.ID(), tn.AdminToken, ping); status != 200 {
		t.Fatalf("owner: %d %s", status, body)
	}
	// The 17th session of one identity closes its oldest idle one.
	for range 16 {
		connect(t, tn, "stateful", "", tn.AdminToken, nil)
	}
	if status, _ := post(first.ID(), tn.AdminToken, ping); status != 404 {
		t.Fatalf("the oldest idle session is still open: %d", status)
	}
	// Idle sessions expire.
	late := connect(t, tn, "stateful", "", tn.UserToken, nil)
	time.Sleep(3 * time.Second)
	if status, _ := post(late.ID(), tn.UserToken, ping); status != 404 {
		t.Fatalf("an idle session outlived session_timeout: %d", status)
	}
}

// headerTransport adds headers to every request.
type headerTransport struct {
	hdr  map[string]string
	base http.RoundTripper
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.hdr {
		r.Header.Set(k, v)
	}
	return h.base.RoundTrip(r)
}

// docs/mcp.md §6.1.5 (checklist 23): a stateless 2025-11-25 call cannot be cancelled; it ends
// at the deadline of its POST's Alknet-Timeout-Ms.
func TestStatelessDeadline(t *testing.T) {
	tn := startMCPNode(t, mcp.ServerOptions{Stateless: true})
	tr := &http.Transport{Proxy: nil}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: headerTransport{map[string]string{"Alknet-Timeout-Ms": "1000"}, tr}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx,
		&sdk.StreamableClientTransport{Endpoint: tn.Loopback + "/mcp", HTTPClient: client}, &sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	start := time.Now()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "test_block", Arguments: map[string]any{}})
	if err != nil || !res.IsError || !strings.HasPrefix(text(res), "TIMEOUT: ") || time.Since(start) > 2*time.Second {
		t.Fatalf("%v %+v after %v", err, res, time.Since(start))
	}
}
