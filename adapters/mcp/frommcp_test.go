package mcp_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/alkdev/alknet/adapters/internal/adaptertest"
	"github.com/alkdev/alknet/adapters/mcp"
	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
)

const envCanary = "env-CANARY-5e1f"
const keyCanary = "key-CANARY-93ab"

// buildServer builds testdata/mcpserver once per test binary.
func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mcpserver")
	out, err := exec.Command("go", "build", "-o", bin, "../testdata/mcpserver").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

var tester = &core.Identity{ID: "tester", Scopes: []string{"tools"}}

func processAlive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// docs/mcp.md §7, checklists 28–30 (stdio, against a Go MCP server).
func TestImportStdio(t *testing.T) {
	bin := buildServer(t)
	t.Setenv("ALKNET_TEST_CANARY", envCanary) // the node's environment must not reach the child
	logs := &adaptertest.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	caps := core.NewCapabilities(map[string][]byte{"api_key:tools": []byte(keyCanary)})
	im, err := mcp.Import(context.Background(), mcp.ImportConfig{Service: "tools", Command: []string{bin}, StateDir: t.TempDir(),
		Env: map[string]string{"SPAWN_SLEEPER": "1"}, EnvFromCapability: map[string]string{"SECRET_KEY": "api_key:tools"},
		Queries: []string{"double"}, Visibility: call.VisibilityExternal, RequiredScopes: []string{"tools"}}, caps, log)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = im.Close(context.Background())
		}
	}()
	types := map[string]call.OperationType{}
	for _, r := range im.Registrations() {
		types[r.Spec.Name] = r.Spec.Type
	}
	if _, ok := types["tools/bad name"]; ok || len(types) != 6 {
		t.Fatalf("imported %v", types)
	}
	// queries beats readOnlyHint: get-sum says read-only but is not in queries.
	if types["tools/double"] != call.OpQuery || types["tools/get-sum"] != call.OpMutation {
		t.Fatalf("op types %v", types)
	}
	tn := adaptertest.Start(t, adaptertest.Config{Regs: im.Registrations()})
	d := tn.N.Dispatcher()
	out, ce := adaptertest.CallAs(t, d, tester, "tools/get-sum", `{"a":2,"b":3}`)
	if ce != nil || !strings.Contains(out, `"text":"The sum of 2 and 3 is 5."`) || !strings.Contains(out, `"content":[`) {
		t.Fatalf("get-sum: %s %v", out, ce)
	}
	if out, ce = adaptertest.CallAs(t, d, tester, "tools/double", `{"n":4}`); ce != nil || out != `{"double":8}` {
		t.Fatalf("double: %s %v", out, ce)
	}
	if _, ce = adaptertest.CallAs(t, d, tester, "tools/get-sum", `{"a":"x","b":3}`); ce == nil || ce.Code() != "INVALID_INPUT" {
		t.Fatalf("bad arguments: %v", ce)
	}
	if out, ce = adaptertest.CallAs(t, d, tester, "tools/get-env", `{"name":"ALKNET_TEST_CANARY"}`); ce != nil || strings.Contains(out, envCanary) {
		t.Fatalf("the node's environment reached the child: %s %v", out, ce)
	}
	if out, ce = adaptertest.CallAs(t, d, tester, "tools/get-env", `{"name":"SECRET_KEY"}`); ce != nil || !strings.Contains(out, `"text":"[REDACTED]"`) || strings.Contains(out, keyCanary) {
		t.Fatalf("env_from_capability: %s %v", out, ce)
	}
	if _, ce = adaptertest.CallAs(t, d, tester, "tools/fail", `{}`); ce == nil || ce.Code() != mcp.CodeToolError || strings.Contains(ce.Message()+string(ce.Details()), keyCanary) || !strings.Contains(ce.Message(), "boom: [REDACTED]") {
		t.Fatalf("tool error: %v %s", ce, ce.Details())
	}
	if _, ce = adaptertest.CallAs(t, d, tester, "tools/stderr", `{"text":"stderr `+keyCanary+`"}`); ce != nil {
		t.Fatal(ce)
	}
	eventually(t, func() bool { return strings.Contains(logs.String(), "stderr [REDACTED]") })
	if strings.Contains(logs.String(), keyCanary) {
		t.Fatal("the stderr canary is in the logs unredacted")
	}
	if strings.Contains(logs.String(), "level=INFO msg=\"mcp import stderr") {
		t.Fatal("child stderr logged at info")
	}
	// A killed child: MCP_UNAVAILABLE, then success once it is back.
	out, _ = adaptertest.CallAs(t, d, tester, "tools/pid", `{}`)
	var res struct{ Text string }
	_ = json.Unmarshal([]byte(out), &res)
	pid, _ := strconv.Atoi(res.Text)
	if pid == 0 {
		t.Fatalf("pid: %s", out)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	eventually(t, func() bool {
		_, ce := adaptertest.CallAs(t, d, tester, "tools/pid", `{}`)
		return ce != nil && ce.Code() == mcp.CodeUnavailable && ce.Retryable()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ce := adaptertest.CallAs(t, d, tester, "tools/get-sum", `{"a":1,"b":1}`); ce == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no reconnect within 10 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, _ = adaptertest.CallAs(t, d, tester, "tools/pid", `{}`)
	_ = json.Unmarshal([]byte(out), &res)
	pid, _ = strconv.Atoi(res.Text)
	pgid, _ := syscall.Getpgid(pid)
	// Close leaves no process of the group (the grandchild sleeper included).
	if err := im.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	closed = true
	eventually(t, func() bool { return syscall.Kill(-pgid, 0) != nil })
	if processAlive(pid) {
		t.Fatal("the child outlived Close")
	}
}

// docs/mcp.md §7.2, §7.6 (Go ↔ Go): from_mcp over streamable HTTP against our own to_mcp; an
// abort sends notifications/cancelled and cancels the far handler (checklist 29).
func TestImportHTTPFromOurOwn(t *testing.T) {
	far := startMCPNode(t, mcp.ServerOptions{})
	caps := core.NewCapabilities(map[string][]byte{"http_token:far": []byte(far.AdminToken)})
	im, err := mcp.Import(context.Background(), mcp.ImportConfig{Service: "far", Transport: "http", URL: far.Loopback + "/mcp",
		AllowLoopbackHTTP: true, Visibility: call.VisibilityExternal, RequiredScopes: []string{"tools"}}, caps, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close(context.Background())
	names := map[string]bool{}
	for _, r := range im.Registrations() {
		names[r.Spec.Name] = true
	}
	if !names["far/demo_add"] || !names["far/test_admin"] {
		t.Fatalf("imported %v (the admin token sees test_admin)", names)
	}
	tn := adaptertest.Start(t, adaptertest.Config{Regs: im.Registrations()})
	d := tn.N.Dispatcher()
	if out, ce := adaptertest.CallAs(t, d, tester, "far/demo_add", `{"a":2,"b":40}`); ce != nil || out != `{"sum":42}` {
		t.Fatalf("far/demo_add: %s %v", out, ce)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		deadline := time.Now().Add(5 * time.Second)
		for far.Blocking.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	_, _ = d.Call(ctx, call.RootRequest{Operation: "far/test_block", Input: json.RawMessage(`{}`), ConnIdentity: tester})
	eventually(t, func() bool { return far.Cancelled.Load() == 1 })
}

// docs/mcp.md §7.2 (checklist 31): the Bearer goes to the import's origin only; a redirect to
// another origin fails and the other origin gets nothing.
func TestImportHTTPRedirect(t *testing.T) {
	var otherAuth atomic.Int64
	other := listen(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			otherAuth.Add(1)
		}
		w.WriteHeader(404)
	}))
	hop := listen(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other+"/mcp", http.StatusTemporaryRedirect)
	}))
	caps := core.NewCapabilities(map[string][]byte{"http_token:hop": []byte("tok-CANARY")})
	_, err := mcp.Import(context.Background(), mcp.ImportConfig{Service: "hop", Transport: "http", URL: hop + "/mcp",
		AllowLoopbackHTTP: true, ConnectTimeout: 3 * time.Second}, caps, nil)
	if err == nil || strings.Contains(err.Error(), "tok-CANARY") {
		t.Fatalf("a redirect to another origin: %v", err)
	}
	if otherAuth.Load() != 0 {
		t.Fatal("the other origin received the Bearer")
	}
	if _, err := mcp.Import(context.Background(), mcp.ImportConfig{Service: "x", Transport: "http", URL: "http://mcp.example.com/mcp"}, caps, nil); err == nil {
		t.Fatal("http off loopback was accepted")
	}
}

func listen(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}
