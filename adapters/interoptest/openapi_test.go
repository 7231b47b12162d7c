package interoptest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/adapters/internal/adaptertest"
	"github.com/alkdev/alknet/adapters/interoptest"
	"github.com/alkdev/alknet/adapters/openapi"
	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
)

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// document fetches a node's /openapi.json (anonymous, loopback) into a file.
func document(t *testing.T, tn *adaptertest.Node, token string) (string, []byte) {
	t.Helper()
	c, base := tn.HTTPClient(t, "loopback", nil)
	var hdr map[string]string
	if token != "" {
		hdr = adaptertest.Bearer(token)
	}
	r := adaptertest.Do(t, c, "GET", base+"/openapi.json", "", hdr)
	if r.Status != 200 {
		t.Fatalf("/openapi.json: %d %s", r.Status, r.Body)
	}
	f := filepath.Join(t.TempDir(), "openapi.json")
	if err := os.WriteFile(f, r.Body, 0o600); err != nil {
		t.Fatal(err)
	}
	return f, r.Body
}

// docs/http.md §4.5 (checklists 12, 13): the document of a node with every schema shape passes
// redocly lint --extends=spec with no problem and redocly lint with no error.
func TestRedoclyLint(t *testing.T) {
	interoptest.NeedNode(t)
	tn := adaptertest.Start(t, adaptertest.Config{})
	f, body := document(t, tn, tn.AdminToken)
	var doc struct {
		Components struct {
			Schemas map[string]map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	for name, s := range doc.Components.Schemas {
		for _, k := range []string{"$defs", "definitions", "$schema"} {
			if _, ok := s[k]; ok {
				t.Fatalf("components.schemas.%s has %s", name, k)
			}
		}
	}
	if s := doc.Components.Schemas["schema_anchored.Input"]; s["x-alknet-schema-omitted"] == nil {
		t.Fatalf("an untranslatable schema is not marked omitted: %v", s)
	}
	redocly := interoptest.Bin(t, "@redocly/cli", "redocly")
	for _, args := range [][]string{{"lint", "--extends=spec", f}, {"lint", f}} {
		out, errOut, _ := interoptest.Run(ctxFor(t, 2*time.Minute), t, redocly, append(args, "--format=json"), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true")
		var res struct {
			Totals *struct{ Errors, Warnings int } `json:"totals"`
		}
		if i := strings.Index(out, "{"); i < 0 || json.Unmarshal([]byte(out[i:]), &res) != nil || res.Totals == nil {
			t.Fatalf("redocly %v: no JSON result\n%s\n%s", args, out, errOut)
		}
		// --extends=spec: no problem at all; the recommended rules: no error (warnings are style).
		if res.Totals.Errors != 0 || args[1] == "--extends=spec" && res.Totals.Warnings != 0 {
			t.Fatalf("redocly %v: %d errors, %d warnings\n%s", args, res.Totals.Errors, res.Totals.Warnings, out)
		}
	}
}

// docs/http.md §4 (checklist 14): Prism in proxy mode with --errors relays every call cleanly;
// an output off its schema is a 500 with VIOLATIONS.
func TestPrismProxy(t *testing.T) {
	interoptest.NeedNode(t)
	tn := adaptertest.Start(t, adaptertest.Config{})
	f, _ := document(t, tn, "")
	port := freePort(t)
	p := interoptest.Start(t, interoptest.Bin(t, "@stoplight/prism-cli", "prism"),
		[]string{"proxy", "--errors", "-h", "127.0.0.1", "-p", fmt.Sprint(port), f, tn.Loopback})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	c := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := c.Get(base + "/openapi.json")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("prism did not start within 60 s:\n%s", p.Stderr())
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, tc := range []struct{ path, body, want string }{
		{"/ops/demo/add", `{"a":2,"b":40}`, `{"sum":42}`},
		{"/ops/demo/echo", `{"text":"hi"}`, `{"text":"hi"}`},
		{"/ops/schema/number", `3`, `3`},
	} {
		r := adaptertest.Do(t, c, "POST", base+tc.path, tc.body, nil)
		if r.Status != 200 || strings.TrimSpace(string(r.Body)) != tc.want || r.Header.Get("sl-violations") != "" {
			t.Fatalf("%s through prism: %d %s violations=%s\n%s", tc.path, r.Status, r.Body, r.Header.Get("sl-violations"), p.Stderr())
		}
	}
	r := adaptertest.Do(t, c, "POST", base+"/ops/test/off-schema", "", nil)
	if r.Status != 500 || !strings.Contains(string(r.Body), "VIOLATIONS") {
		t.Fatalf("an off-schema output through prism: %d %s", r.Status, r.Body)
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// docs/http.md §4 (checklist 14): openapi-typescript types from the document, a consumer on
// openapi-fetch compiled with tsc --strict, calling demo/add.
func TestTypeScriptConsumer(t *testing.T) {
	interoptest.NeedNode(t)
	tn := adaptertest.Start(t, adaptertest.Config{})
	f, _ := document(t, tn, "")
	// The build dir sits under the interop packages so that imports resolve there.
	dir, err := os.MkdirTemp(interoptest.Fixture("openapi"), ".build-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	src, err := os.ReadFile(interoptest.Fixture("openapi", "consumer.ts"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "consumer.ts"), src, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 3*time.Minute)
	if out, errOut, err := interoptest.Run(ctx, t, interoptest.Bin(t, "openapi-typescript", "openapi-typescript"), []string{f, "-o", filepath.Join(dir, "api.d.ts")}); err != nil {
		t.Fatalf("openapi-typescript: %v\n%s\n%s", err, out, errOut)
	}
	tsc := interoptest.Bin(t, "typescript", "tsc")
	if out, errOut, err := interoptest.Run(ctx, t, tsc, []string{"--strict", "--module", "nodenext", "--moduleResolution", "nodenext",
		"--target", "es2022", "--skipLibCheck", "--outDir", dir, filepath.Join(dir, "consumer.ts")}); err != nil {
		t.Fatalf("tsc --strict: %v\n%s\n%s", err, out, errOut)
	}
	out, errOut, err := interoptest.Run(ctx, t, filepath.Join(dir, "consumer.js"), []string{tn.Loopback})
	if err != nil || strings.TrimSpace(out) != `{"sum":42}` {
		t.Fatalf("consumer: %v %q\n%s", err, out, errOut)
	}
}

// docs/http.md §5 against fastify + @fastify/swagger (checklists 16–19): the pets round trip,
// HTTP_404, the echoed credential [REDACTED], a cross-origin redirect refused with nothing
// sent to the other origin.
func TestFastifyImport(t *testing.T) {
	interoptest.NeedNode(t)
	p := interoptest.Start(t, interoptest.Fixture("fastify", "server.mjs"), nil)
	var addr struct{ URL, Other string }
	p.JSONLine(t, &addr)
	caps := core.NewCapabilities(map[string][]byte{"http_token:pets": []byte("tok-CANARY-fastify"), "api_key:pets": []byte("key-CANARY-fastify")})
	im, err := openapi.Import(ctxFor(t, 30*time.Second), openapi.ImportConfig{Service: "pets", Source: addr.URL + "/openapi.json",
		AllowLoopbackHTTP: true, Visibility: call.VisibilityExternal, RequiredScopes: []string{"pets"}, Timeout: 5 * time.Second}, caps, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	tn := adaptertest.Start(t, adaptertest.Config{Regs: im.Registrations()})
	c, base := tn.HTTPClient(t, "loopback", nil)
	tok := adaptertest.Bearer(tn.ScopedToken)
	steps := []struct {
		path, body string
		status     int
		want       string
	}{
		{"/ops/pets/createPet", `{"body":{"name":"Tom","tag":null}}`, 200, `"name":"Tom"`},
		{"/ops/pets/getPet", `{"id":"1"}`, 200, `"name":"Rex"`},
		{"/ops/pets/listPets", `{"tag":["a","b"]}`, 200, `[]`},
		{"/ops/pets/getPet", `{"id":"99"}`, 404, `"code":"HTTP_404"`},
		{"/ops/pets/secure", `{}`, 200, `"authorization":"Bearer [REDACTED]"`},
		{"/ops/pets/keyed", `{}`, 200, `"key":"[REDACTED]"`},
		{"/ops/pets/big", `{}`, 502, `HTTP_RESPONSE_TOO_LARGE`},
		{"/ops/pets/hop", `{}`, 502, `HTTP_TRANSPORT_ERROR`},
		{"/ops/pets/getPet", `{"id":".."}`, 400, `INVALID_INPUT`},
	}
	for _, s := range steps {
		r := adaptertest.Do(t, c, "POST", base+s.path, s.body, tok)
		if r.Status != s.status || !strings.Contains(string(r.Body), s.want) || strings.Contains(string(r.Body), "CANARY") {
			t.Fatalf("%s %s: %d %s, want %d with %s", s.path, s.body, r.Status, r.Body, s.status, s.want)
		}
	}
	resp, err := http.Get(addr.Other + "/seen")
	if err != nil {
		t.Fatal(err)
	}
	var seen struct{ Authorizations int }
	_ = json.NewDecoder(resp.Body).Decode(&seen)
	resp.Body.Close()
	if seen.Authorizations != 0 {
		t.Fatal("the other origin received the credential")
	}
	if strings.Contains(tn.Logs.String(), "CANARY") {
		t.Fatal("a credential is in the node's log")
	}
}
