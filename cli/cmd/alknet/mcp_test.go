package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// docs/mcp.md §6.3 (checklist 26): alknet mcp speaks only JSON-RPC on stdout, follows the
// local node across a restart (tools/list_changed) and exits 0 at EOF.
func TestMCPStdio(t *testing.T) {
	v := newVaultNode(t)
	v.serve("--listen", "127.0.0.1:0", "--demo")
	cmd := exec.Command(binary, "--state-dir", v.state, "mcp", "--refresh", "1s")
	mcpStderr := &syncBuffer{}
	cmd.Stderr = mcpStderr
	var changes atomic.Int64
	client := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, &sdk.ClientOptions{
		ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) { changes.Add(1) }})
	tr := &sdk.CommandTransport{Command: cmd}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, err := client.Connect(ctx, tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	tools := func() map[string]bool {
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
	if got := tools(); !got["demo_add"] || !got["node_status"] {
		t.Fatalf("tools %v", got)
	}
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "demo_add", Arguments: map[string]any{"a": 2, "b": 40}})
	if err != nil || res.IsError {
		t.Fatalf("%v %+v", err, res)
	}
	if b, _ := json.Marshal(res.StructuredContent); string(b) != `{"sum":42}` {
		t.Fatalf("demo_add: %s", b)
	}
	// The node restarts without the demo operations: the tools follow, with a notification.
	v.stop()
	v.serve("--listen", "127.0.0.1:0")
	deadline := time.Now().Add(20 * time.Second)
	for got := tools(); changes.Load() == 0 || got["demo_add"] || !got["node_status"]; got = tools() {
		if time.Now().After(deadline) {
			t.Fatalf("no tools/list_changed within 20 s of the restart (changes %d)", changes.Load())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// EOF on stdin: exit 0.
	if err := cs.Close(); err != nil {
		t.Fatalf("exit at EOF: %v\n%s", err, mcpStderr.String())
	}
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("exit state %v", cmd.ProcessState)
	}
	// Raw: every stdout line is JSON-RPC (logs go to stderr, -v too), and EOF ends the process with 0.
	raw := exec.Command(binary, "--state-dir", v.state, "mcp", "-v")
	stdin, _ := raw.StdinPipe()
	out, _ := raw.StdoutPipe()
	var stderr bytes.Buffer
	raw.Stderr = &stderr
	if err := raw.Start(); err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(stdin, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`+"\n"+
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n"+`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`+"\n")
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil || m["jsonrpc"] != "2.0" {
			t.Fatalf("stdout carries a non-JSON-RPC line: %q", sc.Text())
		}
		if m["id"] == float64(2) {
			break
		}
	}
	_ = stdin.Close()
	go func() { _, _ = io.Copy(io.Discard, out) }()
	if err := raw.Wait(); err != nil {
		t.Fatalf("alknet mcp at EOF: %v\n%s", err, stderr.String())
	}
	if len(lines) < 2 || !strings.Contains(strings.Join(lines, "\n"), `"node_status"`) {
		t.Fatalf("answers %q", lines)
	}
}
