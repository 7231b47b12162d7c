package mcp_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/alkdev/alknet/adapters/internal/adaptertest"
	"github.com/alkdev/alknet/adapters/mcp"
	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/call/node"
	"github.com/alkdev/alknet/call/toolname"
)

// docs/http.md §2.3, §2.4, checklist 11: a hub serves what it imports from a worker over HTTP
// and MCP as the worker comes and goes; names never move.
func TestHubImports(t *testing.T) {
	worker, err := node.Start(node.Options{Demo: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = worker.Shutdown(context.Background()) })
	set := call.NewPeerSet()
	// A hub operation whose tool name is the base name of an import that attaches later.
	taken := call.HandlerRegistration{Spec: call.OperationSpec{Name: "w1_demo/add", Type: call.OpQuery, Visibility: call.VisibilityExternal},
		Handler: func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
			return json.RawMessage(`1`), nil
		}}
	hub := adaptertest.Start(t, adaptertest.Config{MCP: &mcp.ServerOptions{}, Peers: set, Regs: []call.HandlerRegistration{taken}})

	var changes atomic.Int64
	cs := connect(t, hub, "stateful", "", "", &sdk.ClientOptions{ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) { changes.Add(1) }})
	c, _ := hub.HTTPClient(t, "loopback", nil)
	tools := func() map[string]bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		list, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, tl := range list.Tools {
			out[tl.Name] = true
		}
		return out
	}
	before := tools()
	doc := string(adaptertest.Do(t, c, "GET", hub.Loopback+"/openapi.json", "", nil).Body)
	if before["w1_demo_echo"] || strings.Contains(doc, "w1_demo_echo") {
		t.Fatal("an import before the worker attached")
	}

	// Attach: the hub dials the worker and imports its operations as w1/….
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	link, err := node.Dial(ctx, worker.TicketString(), node.DialOptions{Dispatcher: hub.N.Dispatcher()})
	if err != nil {
		t.Fatal(err)
	}
	res, err := call.ImportFrom(ctx, link, call.ImportConfig{Peer: "w1", Prefix: "w1", KeepRemoteVisibility: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := link.ReplaceImports(res.Registrations); err != nil {
		t.Fatal(err)
	}
	if err := set.Attach("w1", link); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return changes.Load() > 0 && tools()["w1_demo_echo"] })
	after := tools()
	for name := range before {
		if !after[name] {
			t.Fatalf("%s changed name or vanished on attach", name)
		}
	}
	if !after[toolname.Hashed("w1/demo/add")] || after["w1_demo_add"] && !before["w1_demo_add"] {
		t.Fatalf("w1/demo/add: want the hashed name (its base is taken): %v", after)
	}
	if r := adaptertest.Do(t, c, "POST", hub.Loopback+"/ops/w1/demo/echo", `{"text":"hi"}`, nil); r.Status != 200 || string(r.Body) != `{"text":"hi"}` {
		t.Fatalf("POST /ops/w1/demo/echo: %d %s", r.Status, r.Body)
	}
	r := adaptertest.Do(t, c, "POST", hub.Loopback+"/ops/w1/demo/ticker", `{"count":2,"interval_ms":1}`, nil)
	if r.Status != 200 || !strings.HasSuffix(string(r.Body), "event: done\ndata: {}\n\n") || !strings.Contains(string(r.Body), `data: {"tick":1}`) {
		t.Fatalf("SSE over an import: %d %q", r.Status, r.Body)
	}
	if doc := string(adaptertest.Do(t, c, "GET", hub.Loopback+"/openapi.json", "", nil).Body); !strings.Contains(doc, `"operationId":"w1_demo_echo"`) {
		t.Fatal("the document lacks w1_demo_echo after attach")
	}

	// Detach: the tools go, the others keep their names.
	seen := changes.Load()
	_ = link.Close()
	eventually(t, func() bool { return changes.Load() > seen && !tools()["w1_demo_echo"] })
	final := tools()
	for name := range before {
		if !final[name] {
			t.Fatalf("%s changed name or vanished on detach", name)
		}
	}
	if doc := string(adaptertest.Do(t, c, "GET", hub.Loopback+"/openapi.json", "", nil).Body); strings.Contains(doc, "w1_demo_echo") {
		t.Fatal("the document still has w1_demo_echo after detach")
	}
}

// eventually polls cond for up to 2 s.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 2 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
