package call_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/identity"

	"github.com/alkdev/alknet/call/internal/wire"
)

// Checklist 43, 44: auth_token per request, forwarded_for never used for access.
func TestRequestIdentity(t *testing.T) {
	clientKey, _ := identity.Generate()
	admin := constOp("id/admin", `"ok"`)
	admin.Spec.AccessControl = call.AccessControl{RequiredScopes: []string{"admin"}}
	n := startNode(t, nodeOpts{regs: []call.HandlerRegistration{whoami(), admin}, dynamic: config.DynamicConfig{
		Peers:   []auth.PeerEntry{{PeerID: "alice", Fingerprints: []string{clientKey.Fingerprint()}, Scopes: []string{"user"}, Enabled: true}},
		APIKeys: []auth.APIKeyEntry{{Prefix: "alk_test", Hash: auth.HashToken(testToken), Scopes: []string{"admin"}}},
	}})
	for _, tr := range transports {
		c := n.dial(t, tr, clientKey, nil, call.ConnOptions{})
		ctx := tctx(t)
		who := func(opts ...call.CallOption) string {
			out, err := c.Call(ctx, "id/whoami", nil, opts...)
			if err != nil {
				t.Fatal(err)
			}
			return string(out)
		}
		if got := who(); got != `{"forwarded_for":null,"id":"alice"}` {
			t.Fatalf("%s connection identity: %s", tr, got)
		}
		if got := who(call.WithAuthToken(testToken)); got != `{"forwarded_for":null,"id":"alk_test"}` {
			t.Fatalf("%s token identity: %s", tr, got)
		}
		// The token identity lasted one request only.
		if got := who(); got != `{"forwarded_for":null,"id":"alice"}` {
			t.Fatalf("%s after a token request: %s", tr, got)
		}
		if got := who(call.WithAuthToken("alk_nope-wrong")); got != `{"forwarded_for":null,"id":"alice"}` {
			t.Fatalf("%s invalid token must fall back: %s", tr, got)
		}
		// forwarded_for reaches the handler but never grants anything.
		fwd := &core.Identity{ID: "root", Scopes: []string{"admin"}}
		if got := who(call.WithForwardedFor(fwd)); got != `{"forwarded_for":"root","id":"alice"}` {
			t.Fatalf("%s forwarded_for: %s", tr, got)
		}
		_, err := c.Call(ctx, "id/admin", nil, call.WithForwardedFor(fwd))
		var ce *call.Error
		if !errors.As(err, &ce) || ce.Message() != "missing required scope: admin" {
			t.Fatalf("%s forwarded_for granted access: %v", tr, err)
		}
		if _, err := c.Call(ctx, "id/admin", nil, call.WithAuthToken(testToken)); err != nil {
			t.Fatalf("%s admin token: %v", tr, err)
		}
	}
	// A malformed forwarded_for is dropped.
	st := openRaw(t, n.rawConn(t, "quic"))
	st.send(wire.EventRequested, "f", map[string]any{"operationId": "/id/whoami", "input": nil, "forwarded_for": map[string]any{"scopes": "nope"}})
	if e := st.mustNext(); string(e.Payload) != `{"output":{"forwarded_for":null,"id":null}}` {
		t.Fatalf("malformed forwarded_for: %s", e.Payload)
	}
}

// Checklist 66: logs never show an auth_token past its prefix; capabilities never print.
func TestSecretsStayOut(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	caps := core.NewCapabilities(map[string][]byte{"api_key:svc": []byte("sk-very-secret")})
	leaky := queryOp("s/leaky", func(_ context.Context, oc *call.OperationContext, _ json.RawMessage) (json.RawMessage, error) {
		return nil, fmt.Errorf("failed with %v", oc.Capabilities)
	})
	leaky.Capabilities = caps
	d := buildDispatcher(t, nodeOpts{regs: []call.HandlerRegistration{leaky}, dopts: call.Options{Logger: log}}, nil)
	cli, _ := connPair(t, d, nil)
	_, err := cli.Call(tctx(t), "s/leaky", nil, call.WithAuthToken(testToken))
	if err == nil {
		t.Fatal("expected an error")
	}
	mu.Lock()
	text := logs.String()
	mu.Unlock()
	if strings.Contains(text, "sk-very-secret") || strings.Contains(text, testToken) || strings.Contains(err.Error(), "sk-very-secret") {
		t.Fatalf("a secret leaked:\n%s\n%v", text, err)
	}
	if !strings.Contains(text, "[REDACTED]") {
		t.Fatalf("the handler error was not logged: %s", text)
	}
	if _, err := json.Marshal(caps); err == nil {
		t.Fatal("capabilities marshalled")
	}
}

// testToken is an API token of the alk_ format (its prefix is alk_test).
const testToken = "alk_test-token-do-not-use-000000000000000000"

// whoami reports the identity and forwarded_for a handler sees.
func whoami() call.HandlerRegistration {
	r := queryOp("id/whoami", func(_ context.Context, oc *call.OperationContext, _ json.RawMessage) (json.RawMessage, error) {
		out := map[string]any{"id": nil, "forwarded_for": nil}
		if oc.Identity != nil {
			out["id"] = oc.Identity.ID
		}
		if oc.ForwardedFor != nil {
			out["forwarded_for"] = oc.ForwardedFor.ID
		}
		return json.Marshal(out)
	})
	return r
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
