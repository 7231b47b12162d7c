package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alkdev/alknet/adapters/interoptest"
)

// sealed returns the [[capability]] entry of secret under name, sealed by 'alknet secret seal'.
func (v *vaultNode) sealed(name, secret string) string {
	v.t.Helper()
	f := writeFile(v.t, v.t.TempDir(), "secret", secret+"\n")
	blob, errOut, code := v.cli("secret", "seal", "--passphrase-file", v.pass, "--secret-file", f)
	var b struct {
		KeyVersion     int `json:"key_version"`
		Salt, IV, Data string
	}
	if code != 0 || json.Unmarshal([]byte(blob), &b) != nil {
		v.t.Fatalf("seal %s: %d %s %s", name, code, blob, errOut)
	}
	return fmt.Sprintf("[[capability]]\nname = %q\nblob = { key_version = %d, salt = %q, iv = %q, data = %q }\n", name, b.KeyVersion, b.Salt, b.IV, b.Data)
}

// serveHTTP starts 'alknet serve' and returns its start-up lines in order.
func (v *vaultNode) serveHTTP(extra ...string) []string {
	v.t.Helper()
	cmd := exec.Command(binary, append([]string{"--state-dir", v.state, "serve", "--passphrase-file", v.pass}, extra...)...)
	stdout, _ := cmd.StdoutPipe()
	v.stderr = &syncBuffer{}
	cmd.Stderr = v.stderr
	if err := cmd.Start(); err != nil {
		v.t.Fatal(err)
	}
	v.cmd = cmd
	v.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var lines []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.HasPrefix(sc.Text(), "ticket ") {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "ticket ") {
		v.t.Fatalf("no ticket line: %v\n%s", lines, v.stderr.String())
	}
	return lines
}

type httpReply struct {
	status int
	body   string
}

func post(t *testing.T, url, body string, hdr map[string]string) httpReply {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpReply{resp.StatusCode, string(b)}
}

// runTSClient runs the TS SDK client scenario and returns its output lines.
func runTSClient(t *testing.T, scenario map[string]any) string {
	t.Helper()
	b, _ := json.Marshal(scenario)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, errOut, err := interoptest.Run(ctx, t, interoptest.Fixture("mcp", "client.mjs"), []string{string(b)})
	if err != nil {
		t.Fatalf("client.mjs: %v\n%s\n%s", err, out, errOut)
	}
	return out
}

// The scenario (docs/http.md, docs/mcp.md): a vault node imports a fastify API and
// server-everything, and serves both, with its own operations, over HTTP and MCP.
func TestAdaptersScenario(t *testing.T) {
	interoptest.NeedNode(t)
	api := interoptest.Start(t, interoptest.Fixture("fastify", "server.mjs"), nil)
	var addr struct{ URL, Other string }
	api.JSONLine(t, &addr)

	// 1. init; the API's token and key sealed as capabilities; an API key for pets and tools.
	v := newVaultNode(t)
	caps := v.sealed("http_token:pets", "tok-CANARY-scenario") + v.sealed("api_key:pets", "key-CANARY-scenario")
	everything := interoptest.Bin(t, "@modelcontextprotocol/server-everything", "mcp-server-everything")
	cfg := fmt.Sprintf(`[http]
enabled = true
loopback_listen = "127.0.0.1:0"

[mcp]
enabled = true

[[openapi_import]]
service = "pets"
source = "%s/openapi.json"
allow_loopback_http = true
visibility = "external"
required_scopes = ["pets"]

[[mcp_import]]
service = "everything"
command = ["node", %q, "stdio"]
visibility = "external"
required_scopes = ["tools"]

%s`, addr.URL, everything, caps)
	v.config(cfg)
	token, errOut, code := v.cli("apikey", "create", "--scope", "pets", "--scope", "tools")
	token = strings.TrimSpace(token)
	if code != 0 || !strings.HasPrefix(token, "alk_") {
		t.Fatalf("apikey create: %d %s", code, errOut)
	}
	tokenFile := writeFile(t, t.TempDir(), "token", token+"\n")

	// 2. --check accepts the file; the same sections as [[import.openapi]] are refused by name.
	if out, errOut, code := v.cli("serve", "--check", "--passphrase-file", v.pass); code != 0 || !strings.HasPrefix(out, "config ok") {
		t.Fatalf("--check: %d %s %s", code, out, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	_ = os.WriteFile(bad, []byte(strings.Replace(cfg, "[[openapi_import]]", "[[import.openapi]]", 1)), 0o600)
	if _, errOut, code := v.cli("serve", "--check", "--config", bad, "--passphrase-file", v.pass); code == 0 || !strings.Contains(errOut, "import.openapi") {
		t.Fatalf("[[import.openapi]] accepted: %d %s", code, errOut)
	}

	// 3. serve: the http lines come before the ticket.
	lines := v.serveHTTP("--listen", "127.0.0.1:0")
	var https, loop string
	for _, l := range lines {
		if u, ok := strings.CutPrefix(l, "http "); ok {
			if strings.HasPrefix(u, "https://") {
				https = u
			} else {
				loop = u
			}
		}
	}
	if https == "" || loop == "" || !strings.HasPrefix(loop, "http://127.0.0.1:") {
		t.Fatalf("start-up lines %v", lines)
	}

	// alknet status shows the HTTP URLs and MCP.
	if out, errOut, code := v.cli("status", "--json"); code != 0 || !strings.Contains(out, `"http":["`+https+`","`+loop+`"]`) || !strings.Contains(out, `"mcp":true`) {
		t.Fatalf("status: %d %s %s", code, out, errOut)
	}

	// 4. Loopback HTTP.
	bearer := map[string]string{"Authorization": "Bearer " + token}
	if r := post(t, loop+"/ops/pets/createPet", `{"body":{"name":"Tom"}}`, nil); r.status != 401 {
		t.Fatalf("createPet without a token: %d %s", r.status, r.body)
	}
	if r := post(t, loop+"/ops/pets/createPet", `{"body":{"name":"Tom"}}`, bearer); r.status != 200 || !strings.Contains(r.body, `"name":"Tom"`) {
		t.Fatalf("createPet: %d %s", r.status, r.body)
	}
	if r := post(t, loop+"/ops/pets/createPet", `{"body":{"name":"Tom"}}`, map[string]string{"Authorization": "Bearer " + token, "Host": "evil.example"}); r.status != 403 {
		t.Fatalf("Host evil.example: %d", r.status)
	}
	// node/reload (admin scope): anonymous 401 with the Bearer challenge, a non-admin key 403.
	if r := post(t, loop+"/ops/node/reload", "", nil); r.status != 401 || !strings.Contains(r.body, `"code":"FORBIDDEN"`) {
		t.Fatalf("node/reload without credentials: %d %s", r.status, r.body)
	}
	if r := post(t, loop+"/ops/node/reload", "", bearer); r.status != 403 {
		t.Fatalf("node/reload with a pets key: %d %s", r.status, r.body)
	}
	if r := post(t, loop+"/ops/everything/get-sum", `{"a":2,"b":3}`, bearer); r.status != 200 || !strings.Contains(r.body, `"text":"The sum of 2 and 3 is 5."`) {
		t.Fatalf("everything/get-sum: %d %s", r.status, r.body)
	}
	req, _ := http.NewRequest("GET", loop+"/openapi.json", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	doc, errOut, code := v.cli("openapi", "--server-url", loop, "--token-file", tokenFile)
	if code != 0 || doc != string(served) {
		t.Fatalf("alknet openapi differs from GET /openapi.json (%d %s):\n%s\n----\n%s", code, errOut, doc, served)
	}
	docFile := writeFile(t, t.TempDir(), "openapi.json", doc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, errOut, err := interoptest.Run(ctx, t, interoptest.Bin(t, "@redocly/cli", "redocly"), []string{"lint", "--extends=spec", docFile},
		"REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true"); err != nil {
		t.Fatalf("redocly lint: %v\n%s\n%s", err, out, errOut)
	}

	// 5. alknet call.
	if out, errOut, code := v.cli("call", "pets/getPet", `{"id":"1"}`, "--token-file", tokenFile); code != 0 || !strings.Contains(out, `"name":"Rex"`) {
		t.Fatalf("call pets/getPet: %d %s %s", code, out, errOut)
	}
	if out, errOut, code := v.cli("call", "pets/secure", `{}`, "--token-file", tokenFile); code != 0 || !strings.Contains(out, "Bearer [REDACTED]") || strings.Contains(out, "CANARY") {
		t.Fatalf("call pets/secure: %d %s %s", code, out, errOut)
	}
	for _, op := range []string{"pets/getPet", "pets/secure"} {
		if _, _, code := v.cli("call", op, `{"id":"1"}`); code != 4 {
			t.Fatalf("%s without the token: exit %d, want 4", op, code)
		}
	}

	// 6. The TS client over alknet mcp and over <loopback>/mcp.
	steps := []map[string]any{
		{"op": "list"},
		{"op": "call", "name": "pets_createPet", "arguments": map[string]any{"body": map[string]any{"name": "Mia"}}},
		{"op": "call", "name": "everything_get-sum", "arguments": map[string]any{"a": 2, "b": 3}},
	}
	for name, scenario := range map[string]map[string]any{
		"alknet mcp": {"stdio": []string{binary, "--state-dir", v.state, "mcp", "--token-file", tokenFile}, "steps": steps, "env": map[string]string{"GORACE": os.Getenv("GORACE")}},
		"/mcp":       {"url": loop + "/mcp", "headers": bearer, "steps": steps},
	} {
		out := runTSClient(t, scenario)
		for _, want := range []string{`"name":"pets_createPet"`, `"name":"everything_get-sum"`, `"name":"Mia"`, `The sum of 2 and 3 is 5.`} {
			if !strings.Contains(out, want) {
				t.Fatalf("%s: no %s in\n%s", name, want, out)
			}
		}
	}
	if strings.Contains(v.stderr.String(), "CANARY") {
		t.Fatal("a credential is in the node's log")
	}

	// 7. SIGTERM: exit 0, node.ticket removed, no server-everything left.
	pgids := everythingProcesses(t)
	v.stop()
	if _, err := os.Stat(filepath.Join(v.state, "node.ticket")); !os.IsNotExist(err) {
		t.Fatalf("node.ticket after stop: %v", err)
	}
	for _, pid := range pgids {
		if syscall.Kill(pid, 0) == nil {
			t.Fatalf("server-everything (pid %d) outlived the node", pid)
		}
	}
}

// everythingProcesses lists the pids of running server-everything processes.
func everythingProcesses(t *testing.T) []int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(cmdline), "server-everything") {
			out = append(out, pid)
		}
	}
	if len(out) == 0 {
		t.Fatal("no server-everything process while the node runs")
	}
	return out
}

// docs/http.md §8.2 (checklist 21): a failing import stops start-up, named, unless it is
// optional; then it is logged and the node starts.
func TestFailingImports(t *testing.T) {
	v := newVaultNode(t)
	dead := "http://" + freePort(t) + "/openapi.json"
	cfg := fmt.Sprintf("[[openapi_import]]\nservice = \"gone\"\nsource = %q\nallow_loopback_http = true\n", dead)
	v.config(cfg)
	if _, errOut, code := v.cli("serve", "--passphrase-file", v.pass, "--listen", "127.0.0.1:0"); code != 1 || !strings.Contains(errOut, "openapi_import[0] (gone)") {
		t.Fatalf("a failing import: exit %d\n%s", code, errOut)
	}
	v.config(cfg + "optional = true\n")
	v.serve("--listen", "127.0.0.1:0")
	eventually(t, func() bool { return strings.Contains(v.stderr.String(), "optional import failed") }, "the optional import's failure logged")
	v.stop()
}
