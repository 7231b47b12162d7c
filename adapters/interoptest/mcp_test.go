package interoptest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/adapters/internal/adaptertest"
	"github.com/alkdev/alknet/adapters/interoptest"
	"github.com/alkdev/alknet/adapters/mcp"
	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
)

// clientLine is one line the TS client prints.
type clientLine struct {
	Step  *int `json:"step"`
	Tools []struct {
		Name         string         `json:"name"`
		InputSchema  map[string]any `json:"inputSchema"`
		OutputSchema map[string]any `json:"outputSchema"`
	} `json:"tools"`
	Result *struct {
		IsError           bool                    `json:"isError"`
		Content           []struct{ Text string } `json:"content"`
		StructuredContent json.RawMessage         `json:"structuredContent"`
	} `json:"result"`
	Error           string          `json:"error"`
	Code            any             `json:"code"`
	ListChanged     int             `json:"listChanged"`
	Done            bool            `json:"done"`
	ProtocolVersion string          `json:"protocolVersion"`
	Capabilities    json.RawMessage `json:"capabilities"`
}

// runClient runs mcp/client.mjs with scenario and returns its lines.
func runClient(t *testing.T, scenario map[string]any) []clientLine {
	t.Helper()
	b, _ := json.Marshal(scenario)
	out, errOut, err := interoptest.Run(ctxFor(t, 2*time.Minute), t, interoptest.Fixture("mcp", "client.mjs"), []string{string(b)})
	if err != nil {
		t.Fatalf("client.mjs: %v\n%s\n%s", err, out, errOut)
	}
	var lines []clientLine
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var cl clientLine
		if json.Unmarshal([]byte(l), &cl) == nil {
			lines = append(lines, cl)
		}
	}
	if len(lines) == 0 || !lines[len(lines)-1].Done {
		t.Fatalf("client.mjs did not finish:\n%s\n%s", out, errOut)
	}
	return lines
}

// CheckToMCP asserts the TS client's view of a to_mcp server (docs/mcp.md §6.1, checklist 22).
func checkToMCP(t *testing.T, lines []clientLine) {
	t.Helper()
	tools := map[string]bool{}
	for _, tl := range lines[0].Tools {
		tools[tl.Name] = true
		if tl.InputSchema["type"] != "object" {
			t.Fatalf("%s: inputSchema %v", tl.Name, tl.InputSchema)
		}
		if _, ok := tl.InputSchema["$schema"]; ok {
			t.Fatalf("%s: a published schema has $schema", tl.Name)
		}
	}
	if !tools["demo_add"] || tools["demo_ticker"] || tools["demo_compose"] {
		t.Fatalf("tools %v", tools)
	}
	add := lines[1].Result
	if add == nil || add.IsError || string(add.StructuredContent) != `{"sum":42}` {
		t.Fatalf("demo_add: %+v %s", lines[1], lines[1].Error)
	}
	if bad := lines[2].Result; bad == nil || !bad.IsError || !strings.HasPrefix(bad.Content[0].Text, "INVALID_INPUT: ") {
		t.Fatalf("bad arguments: %+v", lines[2])
	}
	if !strings.Contains(lines[3].Error, "-32602") && fmt.Sprint(lines[3].Code) != "-32602" {
		t.Fatalf("unknown tool: %+v", lines[3])
	}
	if wrapped := lines[4].Result; wrapped == nil || wrapped.IsError || wrapped.Content[0].Text != "3" {
		t.Fatalf("wrapped input: %+v", lines[4])
	}
	done := lines[len(lines)-1]
	var caps map[string]any
	_ = json.Unmarshal(done.Capabilities, &caps)
	if len(caps) != 1 || caps["tools"] == nil {
		t.Fatalf("capabilities %s, want tools only", done.Capabilities)
	}
}

var toMCPSteps = []map[string]any{
	{"op": "list"},
	{"op": "call", "name": "demo_add", "arguments": map[string]any{"a": 2, "b": 40}},
	{"op": "call", "name": "demo_add", "arguments": map[string]any{"a": "x", "b": 1}},
	{"op": "call", "name": "nope", "arguments": map[string]any{}},
	{"op": "call", "name": "schema_number", "arguments": map[string]any{"input": 3}},
}

// docs/mcp.md §6.2 (checklists 22, 23, 27): the TypeScript SDK client over /mcp, stateful and
// stateless; an AbortSignal cancels the operation (stateful).
func TestTSClientOverHTTP(t *testing.T) {
	interoptest.NeedNode(t)
	for _, stateless := range []bool{false, true} {
		t.Run(fmt.Sprintf("stateless=%v", stateless), func(t *testing.T) {
			tn := adaptertest.Start(t, adaptertest.Config{MCP: &mcp.ServerOptions{Stateless: stateless, Exclude: []string{"demo/compose"}}})
			steps := append([]map[string]any{}, toMCPSteps...)
			if !stateless {
				steps = append(steps, map[string]any{"op": "call", "name": "test_block", "arguments": map[string]any{}, "abortAfterMs": 300})
			}
			lines := runClient(t, map[string]any{"url": tn.Loopback + "/mcp", "headers": map[string]string{"Authorization": "Bearer " + tn.AdminToken}, "steps": steps})
			checkToMCP(t, lines)
			if done := lines[len(lines)-1]; done.ProtocolVersion != "" && done.ProtocolVersion != "2025-11-25" {
				t.Fatalf("negotiated %s", done.ProtocolVersion)
			}
			if !stateless {
				deadline := time.Now().Add(2 * time.Second)
				for tn.Cancelled.Load() != 1 {
					if time.Now().After(deadline) {
						t.Fatalf("the AbortSignal did not cancel the operation within 1 s (started %d)\n%+v\n%s", tn.Blocking.Load(), lines[len(lines)-2], tn.Logs.String())
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
}

// importMCP imports an MCP server into a node as an external, scoped service.
func importMCP(t *testing.T, cfg mcp.ImportConfig, caps core.Capabilities) (*mcp.Imported, *adaptertest.Node) {
	t.Helper()
	cfg.Visibility, cfg.RequiredScopes = call.VisibilityExternal, []string{"tools"}
	if cfg.StateDir == "" {
		cfg.StateDir = t.TempDir()
	}
	im, err := mcp.Import(ctxFor(t, 60*time.Second), cfg, caps, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = im.Close(context.Background()) })
	return im, adaptertest.Start(t, adaptertest.Config{Regs: im.Registrations()})
}

func callOps(t *testing.T, tn *adaptertest.Node, op, body string) adaptertest.Reply {
	t.Helper()
	c, base := tn.HTTPClient(t, "loopback", nil)
	return adaptertest.Do(t, c, "POST", base+"/ops/"+op, body, adaptertest.Bearer(tn.ScopedToken))
}

// docs/mcp.md §7 (checklists 28, 30): server-everything over stdio.
func TestServerEverything(t *testing.T) {
	interoptest.NeedNode(t)
	caps := core.NewCapabilities(map[string][]byte{"api_key:everything": []byte("key-CANARY-everything")})
	t.Setenv("ALKNET_NODE_CANARY", "node-env-CANARY")
	_, tn := importMCP(t, mcp.ImportConfig{Service: "everything", Command: []string{"node", interoptest.Bin(t, "@modelcontextprotocol/server-everything", "mcp-server-everything"), "stdio"},
		EnvFromCapability: map[string]string{"EVERYTHING_KEY": "api_key:everything"}}, caps)
	r := callOps(t, tn, "everything/get-sum", `{"a":2,"b":3}`)
	var sum struct {
		Text    string
		Content []map[string]any
	}
	if r.Status != 200 || json.Unmarshal(r.Body, &sum) != nil || sum.Text != "The sum of 2 and 3 is 5." || len(sum.Content) != 1 {
		t.Fatalf("get-sum: %d %s", r.Status, r.Body)
	}
	if r := callOps(t, tn, "everything/get-structured-content", `{"location":"Chicago"}`); r.Status != 200 || !strings.Contains(string(r.Body), "temperature") {
		t.Fatalf("get-structured-content: %d %s", r.Status, r.Body)
	}
	if r := callOps(t, tn, "everything/get-structured-content", `{"location":"Atlantis"}`); r.Status != 400 {
		t.Fatalf("an input off its draft-07 schema: %d %s", r.Status, r.Body)
	}
	r = callOps(t, tn, "everything/get-annotated-message", `{"messageType":"success","includeImage":true}`)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"type":"image"`) || !strings.Contains(string(r.Body), `"type":"text"`) {
		t.Fatalf("get-annotated-message: %d %.300s", r.Status, r.Body)
	}
	if r := callOps(t, tn, "everything/get-sum", `{"a":"x"}`); r.Status != 400 || !strings.Contains(string(r.Body), "INVALID_INPUT") {
		t.Fatalf("bad arguments: %d %s", r.Status, r.Body)
	}
	r = callOps(t, tn, "everything/get-env", `{}`)
	if r.Status != 200 || strings.Contains(string(r.Body), "node-env-CANARY") || strings.Contains(string(r.Body), "key-CANARY") ||
		!strings.Contains(string(r.Body), "EVERYTHING_KEY") || !strings.Contains(string(r.Body), "[REDACTED]") {
		t.Fatalf("get-env: %d %.500s", r.Status, r.Body)
	}
}

// docs/mcp.md §7 (checklist 29): server-filesystem in a temporary directory.
func TestServerFilesystem(t *testing.T) {
	interoptest.NeedNode(t)
	root := t.TempDir()
	_, tn := importMCP(t, mcp.ImportConfig{Service: "fs", Command: []string{"node", interoptest.Bin(t, "@modelcontextprotocol/server-filesystem", "mcp-server-filesystem"), root}}, core.Capabilities{})
	file := filepath.Join(root, "note.txt")
	in, _ := json.Marshal(map[string]string{"path": file, "content": "hello from alknet"})
	if r := callOps(t, tn, "fs/write_file", string(in)); r.Status != 200 {
		t.Fatalf("write_file: %d %s", r.Status, r.Body)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "hello from alknet" {
		t.Fatalf("%q %v", b, err)
	}
	in, _ = json.Marshal(map[string]string{"path": file})
	if r := callOps(t, tn, "fs/read_text_file", string(in)); r.Status != 200 || !strings.Contains(string(r.Body), "hello from alknet") {
		t.Fatalf("read_text_file: %d %s", r.Status, r.Body)
	}
	in, _ = json.Marshal(map[string]string{"path": "/etc/hostname"})
	if r := callOps(t, tn, "fs/read_text_file", string(in)); r.Status != 502 || !strings.Contains(string(r.Body), "MCP_TOOL_ERROR") {
		t.Fatalf("outside the root: %d %s", r.Status, r.Body)
	}
}

// docs/mcp.md §7.2 (checklist 31): from_mcp over streamable HTTP to the TS SDK server; the
// Bearer only to its origin; its 307 to another origin fails with nothing sent there.
func TestTSServerOverHTTP(t *testing.T) {
	interoptest.NeedNode(t)
	p := interoptest.Start(t, interoptest.Fixture("mcp", "server.mjs"), nil)
	var addr struct{ URL, Hop, Other string }
	p.JSONLine(t, &addr)
	caps := core.NewCapabilities(map[string][]byte{"http_token:ts": []byte("tok-CANARY-ts")})
	_, tn := importMCP(t, mcp.ImportConfig{Service: "ts", Transport: "http", URL: addr.URL, AllowLoopbackHTTP: true}, caps)
	if r := callOps(t, tn, "ts/get-sum", `{"a":2,"b":3}`); r.Status != 200 || !strings.Contains(string(r.Body), "The sum of 2 and 3 is 5.") {
		t.Fatalf("ts/get-sum: %d %s", r.Status, r.Body)
	}
	_, err := mcp.Import(ctxFor(t, 20*time.Second), mcp.ImportConfig{Service: "hop", Transport: "http", URL: addr.Hop, AllowLoopbackHTTP: true, ConnectTimeout: 5 * time.Second},
		core.NewCapabilities(map[string][]byte{"http_token:hop": []byte("tok-CANARY-hop")}), nil)
	if err == nil || strings.Contains(err.Error(), "CANARY") {
		t.Fatalf("a 307 to another origin: %v", err)
	}
	resp, err := http.Get(addr.Other + "/seen")
	if err != nil {
		t.Fatal(err)
	}
	var seen struct{ Authorizations int }
	_ = json.NewDecoder(resp.Body).Decode(&seen)
	resp.Body.Close()
	if seen.Authorizations != 0 {
		t.Fatal("the other origin received the Bearer")
	}
}

// docs/mcp.md §10.1 (checklists 25, 33): MCP Inspector --cli needs Node ≥ 22.19.
func TestInspector(t *testing.T) {
	interoptest.NeedNode(t)
	major, minor := interoptest.NodeVersion(t)
	if major < 22 || major == 22 && minor < 19 {
		t.Skipf("MCP Inspector 2.12.0 needs Node >= 22.19; this is %d.%d", major, minor)
	}
	if _, err := os.Stat(filepath.Join(interoptest.InspectorDir(), "node_modules", "@modelcontextprotocol", "inspector")); err != nil {
		t.Fatal("MCP Inspector is not installed: run make interop-deps")
	}
	tn := adaptertest.Start(t, adaptertest.Config{MCP: &mcp.ServerOptions{}})
	bin := filepath.Join(interoptest.InspectorDir(), "node_modules", "@modelcontextprotocol", "inspector", "cli", "build", "cli.js")
	url := tn.Loopback + "/mcp"
	out, errOut, err := interoptest.Run(ctxFor(t, 2*time.Minute), t, bin, []string{"--cli", url, "--transport", "http", "--method", "tools/list"})
	if err != nil {
		t.Fatalf("inspector tools/list: %v\n%s\n%s", err, out, errOut)
	}
	out, errOut, err = interoptest.Run(ctxFor(t, 2*time.Minute), t, bin, []string{"--cli", url, "--transport", "http", "--method", "tools/call",
		"--tool-name", "demo_add", "--tool-arg", "a=2", "b=40"})
	if err != nil || !strings.Contains(out, "42") {
		t.Fatalf("inspector tools/call: %v\n%s\n%s", err, out, errOut)
	}
}
