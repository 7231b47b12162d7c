package openapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/adapters/internal/adaptertest"
	"github.com/alkdev/alknet/adapters/openapi"
	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
)

const (
	canaryToken = "tok-CANARY-7f3a9c"
	canaryKey   = "key-CANARY-1b2d"
)

// petAPI is a small API and its OpenAPI 3.0 document (docs/http.md §5): the fixture of the
// Go tests; the interop tests use fastify for the same shapes.
type petAPI struct {
	url, otherURL string
	mu            sync.Mutex
	pets          map[string]map[string]any
	lastQuery     string
	lastPath      string
	otherAuth     atomic.Int64 // requests with Authorization that reached the other origin
	slowClosed    atomic.Int64
	doc           string
	closeFns      []func()
}

func (a *petAPI) close() {
	for _, f := range a.closeFns {
		f()
	}
}

func serve(t *testing.T, h http.Handler) (string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = srv.Close()
	}
}

const petDoc = `{
  "openapi": "3.0.3",
  "info": {"title": "pets", "version": "1"},
  "servers": [{"url": "%s"}],
  "components": {
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}, "key": {"type": "apiKey", "in": "header", "name": "X-API-Key"}, "oauth": {"type": "oauth2", "flows": {"clientCredentials": {"tokenUrl": "https://auth.example.com/token", "scopes": {}}}}},
    "schemas": {
      "Pet": {"type": "object", "required": ["id", "name"], "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "tag": {"type": "string", "nullable": true}}},
      "NewPet": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "tag": {"type": "string", "nullable": true}}}
    }
  },
  "paths": {
    "/pets": {
      "get": {"operationId": "listPets", "parameters": [{"name": "tag", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}}],
        "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Pet"}}}}}}},
      "post": {"operationId": "createPet", "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewPet"}}}},
        "responses": {"201": {"description": "made", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}}}}}
    },
    "/pets/{id}": {
      "get": {"operationId": "getPet", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}, {"name": "X-Trace", "in": "header", "schema": {"type": "string"}}],
        "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}}}, "404": {"description": "none"}}}
    },
    "/secure": {"get": {"operationId": "secure", "security": [{"bearer": []}], "responses": {"200": {"description": "echo", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
    "/secure-fail": {"get": {"operationId": "secureFail", "security": [{"bearer": []}], "responses": {"200": {"description": "never"}}}},
    "/keyed": {"get": {"operationId": "keyed", "security": [{"key": []}], "responses": {"200": {"description": "ok", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    "/slow": {"get": {"operationId": "slow", "responses": {"200": {"description": "late"}}}},
    "/big": {"get": {"operationId": "big", "responses": {"200": {"description": "big", "content": {"application/json": {}}}}}},
    "/bad": {"post": {"operationId": "bad", "responses": {"200": {"description": "plain 400 in practice"}}}},
    "/hop": {"get": {"operationId": "hop", "security": [{"bearer": []}], "responses": {"200": {"description": "redirects away"}}}},
    "/events": {"get": {"operationId": "events", "responses": {"200": {"description": "sse", "content": {"text/event-stream": {}}}}}},
    "/oauth": {"get": {"operationId": "oauth", "security": [{"oauth": []}], "responses": {"200": {"description": "x"}}}}
  }
}`

func startPetAPI(t *testing.T, servers string) *petAPI {
	t.Helper()
	a := &petAPI{pets: map[string]map[string]any{"1": {"id": "1", "name": "Rex", "tag": nil}}}
	other, closeOther := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			a.otherAuth.Add(1)
		}
		w.WriteHeader(200)
	}))
	a.otherURL = other
	mux := http.NewServeMux()
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, a.doc)
	})
	mux.HandleFunc("GET /pets", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.lastQuery = r.URL.RawQuery
		out := []any{}
		for _, p := range a.pets {
			out = append(out, p)
		}
		a.mu.Unlock()
		writeJSON(w, 200, out)
	})
	mux.HandleFunc("POST /pets", func(w http.ResponseWriter, r *http.Request) {
		var p map[string]any
		if json.NewDecoder(r.Body).Decode(&p) != nil {
			writeJSON(w, 400, map[string]string{"error": "bad"})
			return
		}
		a.mu.Lock()
		p["id"] = fmt.Sprint(len(a.pets) + 1)
		a.pets[p["id"].(string)] = p
		a.mu.Unlock()
		writeJSON(w, 201, p)
	})
	mux.HandleFunc("GET /pets/{id...}", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.lastPath = r.URL.EscapedPath()
		p, ok := a.pets[r.PathValue("id")]
		a.mu.Unlock()
		if !ok {
			writeJSON(w, 404, map[string]string{"error": "no such pet"})
			return
		}
		writeJSON(w, 200, p)
	})
	echoAuth := func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]string{"authorization": r.Header.Get("Authorization")})
	}
	mux.HandleFunc("GET /secure", echoAuth)
	mux.HandleFunc("GET /secure-fail", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 401, map[string]string{"error": "bad token " + r.Header.Get("Authorization")})
	})
	mux.HandleFunc("GET /keyed", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "key="+r.Header.Get("X-API-Key"))
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			a.slowClosed.Add(1)
		case <-time.After(30 * time.Second):
		}
	})
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `"`+strings.Repeat("x", 5<<20)+`"`)
	})
	mux.HandleFunc("POST /bad", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 400, map[string]string{"error": "nope"}) })
	mux.HandleFunc("GET /hop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, a.otherURL+"/landed", http.StatusTemporaryRedirect)
	})
	url, closeAPI := serve(t, mux)
	a.url = url
	if servers == "" {
		servers = url
	}
	a.doc = fmt.Sprintf(petDoc, servers)
	a.closeFns = []func(){closeAPI, closeOther}
	t.Cleanup(a.close)
	return a
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func petCaps() core.Capabilities {
	return core.NewCapabilities(map[string][]byte{"http_token:pets": []byte(canaryToken), "api_key:pets": []byte(canaryKey), "other": []byte("x")})
}

func importPets(t *testing.T, a *petAPI, mod func(*openapi.ImportConfig)) (*openapi.Imported, *adaptertest.LogBuffer) {
	t.Helper()
	cfg := openapi.ImportConfig{Service: "pets", Source: a.url + "/openapi.json", AllowLoopbackHTTP: true,
		Visibility: call.VisibilityExternal, RequiredScopes: []string{"pets"}, Timeout: 5 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	logs := &adaptertest.LogBuffer{}
	im, err := openapi.Import(context.Background(), cfg, petCaps(), slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(im.Close)
	return im, logs
}

var petsCaller = &core.Identity{ID: "tester", Scopes: []string{"pets"}}

// docs/http.md §5, checklists 16–18 and 20.
func TestImportPets(t *testing.T) {
	a := startPetAPI(t, "")
	im, logs := importPets(t, a, nil)
	tn := adaptertest.Start(t, adaptertest.Config{Regs: im.Registrations()})
	d := tn.N.Dispatcher()
	names := map[string]bool{}
	for _, r := range im.Registrations() {
		names[r.Spec.Name] = true
		if r.Provenance != call.ProvenanceFromOpenAPI {
			t.Fatalf("%s provenance %v", r.Spec.Name, r.Provenance)
		}
	}
	for _, n := range []string{"pets/listPets", "pets/createPet", "pets/getPet", "pets/secure", "pets/keyed"} {
		if !names[n] {
			t.Fatalf("%s not imported: %v", n, names)
		}
	}
	if names["pets/events"] || names["pets/oauth"] {
		t.Fatal("an SSE-only or oauth operation was imported")
	}
	if !strings.Contains(logs.String(), "pets/oauth") {
		t.Fatal("a skipped operation was not logged")
	}
	tests := []struct{ name, op, in, want, code string }{
		{"round trip", "pets/createPet", `{"body":{"name":"Tom","tag":null}}`, `"name":"Tom"`, ""},
		{"nullable accepts null", "pets/getPet", `{"id":"1"}`, `"tag":null`, ""},
		{"missing pet", "pets/getPet", `{"id":"99"}`, "", "HTTP_404"},
		{"undocumented 400", "pets/bad", `{}`, "", "HTTP_400"},
		{"path value ..", "pets/getPet", `{"id":".."}`, "", "INVALID_INPUT"},
		{"path value .", "pets/getPet", `{"id":"."}`, "", "INVALID_INPUT"},
		{"path value empty", "pets/getPet", `{"id":""}`, "", "INVALID_INPUT"},
		{"CR/LF in a header", "pets/getPet", `{"id":"1","X-Trace":"a\r\nX-Evil: 1"}`, "", "INVALID_INPUT"},
		{"too big", "pets/big", `{}`, "", "HTTP_RESPONSE_TOO_LARGE"},
		{"keyed", "pets/keyed", `{}`, `"key=[REDACTED]"`, ""},
		{"secure echoes the token redacted", "pets/secure", `{}`, `{"authorization":"Bearer [REDACTED]"}`, ""},
		{"upstream 401", "pets/secureFail", `{}`, "", "HTTP_401"},
		{"cross-origin redirect", "pets/hop", `{}`, "", "HTTP_TRANSPORT_ERROR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, ce := adaptertest.CallAs(t, d, petsCaller, tc.op, tc.in)
			if tc.code != "" {
				if ce == nil || ce.Code() != tc.code {
					t.Fatalf("%s: %v (out %s), want %s", tc.op, ce, out, tc.code)
				}
				if strings.Contains(string(ce.Details())+ce.Message(), canaryToken) {
					t.Fatalf("the credential leaked: %s %s", ce.Message(), ce.Details())
				}
				return
			}
			if ce != nil || !strings.Contains(out, tc.want) {
				t.Fatalf("%s: %s %v, want %s", tc.op, out, ce, tc.want)
			}
		})
	}
	_, ce := adaptertest.CallAs(t, d, petsCaller, "pets/secureFail", `{}`)
	if !strings.Contains(string(ce.Details()), "[REDACTED]") || strings.Contains(string(ce.Details()), canaryToken) {
		t.Fatalf("details not redacted: %s", ce.Details())
	}
	if a.otherAuth.Load() != 0 {
		t.Fatal("the other origin received a request with Authorization")
	}
	// tag=a&tag=b, and a / in a path value is encoded.
	if _, ce := adaptertest.CallAs(t, d, petsCaller, "pets/listPets", `{"tag":["a","b"]}`); ce != nil {
		t.Fatal(ce)
	}
	if _, ce := adaptertest.CallAs(t, d, petsCaller, "pets/getPet", `{"id":"a/b"}`); ce == nil || ce.Code() != "HTTP_404" {
		t.Fatal(ce)
	}
	a.mu.Lock()
	q, p := a.lastQuery, a.lastPath
	a.mu.Unlock()
	if q != "tag=a&tag=b" || p != "/pets/a%2Fb" {
		t.Fatalf("query %q, path %q", q, p)
	}
	// Through the gateway: HTTP_404 is a 404, upstream 401 a 502 (the node's credential was refused).
	c, base := tn.HTTPClient(t, "loopback", nil)
	tok := adaptertest.Bearer(tn.AdminToken)
	if r := adaptertest.Do(t, c, "POST", base+"/ops/pets/getPet", `{"id":"99"}`, tok); r.Status != 403 {
		t.Fatalf("without the pets scope: %d", r.Status)
	}
	if strings.Contains(logs.String()+tn.Logs.String(), canaryToken) {
		t.Fatal("the credential is in a log")
	}
}

// Gateway status of imported errors and the default Internal visibility (checklist 16).
func TestImportVisibilityAndStatus(t *testing.T) {
	a := startPetAPI(t, "")
	internal, _ := importPets(t, a, func(c *openapi.ImportConfig) { c.Visibility = ""; c.Prefix = "in" })
	external, _ := importPets(t, a, nil)
	tn := adaptertest.Start(t, adaptertest.Config{Regs: append(internal.Registrations(), external.Registrations()...)})
	if _, ce := adaptertest.CallAs(t, tn.N.Dispatcher(), petsCaller, "in/getPet", `{"id":"1"}`); ce == nil || ce.Code() != "NOT_FOUND" {
		t.Fatalf("an Internal import was reachable: %v", ce)
	}
	// An API key with scope pets calls it over HTTP.
	c, base := tn.HTTPClient(t, "loopback", nil)
	key := tn.ScopedToken
	for path, status := range map[string]int{"/ops/pets/getPet": 404, "/ops/pets/secureFail": 502} {
		in := `{"id":"99"}`
		if path != "/ops/pets/getPet" {
			in = `{}`
		}
		r := adaptertest.Do(t, c, "POST", base+path, in, adaptertest.Bearer(key))
		if r.Status != status {
			t.Fatalf("%s: %d %s, want %d", path, r.Status, r.Body, status)
		}
	}
}

// docs/http.md §5.7: aborting a call closes the upstream request; the deadline is TIMEOUT; a
// refused port is HTTP_TRANSPORT_ERROR; a hung upstream leaves the node answering (checklist 20).
func TestImportAbortAndTimeouts(t *testing.T) {
	a := startPetAPI(t, "")
	im, _ := importPets(t, a, func(c *openapi.ImportConfig) { c.Timeout = time.Second })
	tn := adaptertest.Start(t, adaptertest.Config{Regs: im.Registrations()})
	d := tn.N.Dispatcher()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = d.Call(ctx, call.RootRequest{Operation: "pets/slow", Input: json.RawMessage(`{}`), ConnIdentity: petsCaller})
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if _, ce := adaptertest.CallAs(t, d, petsCaller, "node/health", `{}`); ce != nil || time.Since(start) > time.Second {
		t.Fatalf("node/health beside a hung upstream: %v after %v", ce, time.Since(start))
	}
	cancel()
	<-done
	deadline := time.Now().Add(time.Second)
	for a.slowClosed.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the upstream request was not closed within 1 s of the abort")
		}
		time.Sleep(10 * time.Millisecond)
	}
	start = time.Now()
	if _, ce := adaptertest.CallAs(t, d, petsCaller, "pets/slow", `{}`); ce == nil || ce.Code() != "TIMEOUT" || time.Since(start) > 2*time.Second {
		t.Fatalf("import timeout: %v after %v", ce, time.Since(start))
	}
	// A refused port.
	dead, stop := serve(t, http.NotFoundHandler())
	stop()
	im2, _ := importPets(t, a, func(c *openapi.ImportConfig) { c.BaseURL = dead; c.Prefix = "dead" })
	tn2 := adaptertest.Start(t, adaptertest.Config{Regs: im2.Registrations()})
	if _, ce := adaptertest.CallAs(t, tn2.N.Dispatcher(), petsCaller, "dead/listPets", `{}`); ce == nil || ce.Code() != "HTTP_TRANSPORT_ERROR" || !ce.Retryable() {
		t.Fatalf("refused port: %v", ce)
	}
}

// docs/http.md §5.1, §5.2, checklists 19 and 21.
func TestImportRefusals(t *testing.T) {
	a := startPetAPI(t, "https://api.example.com")
	try := func(mod func(*openapi.ImportConfig), caps core.Capabilities) error {
		cfg := openapi.ImportConfig{Service: "pets", Source: a.url + "/openapi.json", AllowLoopbackHTTP: true}
		mod(&cfg)
		im, err := openapi.Import(context.Background(), cfg, caps, nil)
		if err == nil {
			im.Close()
		}
		return err
	}
	if err := try(func(*openapi.ImportConfig) {}, petCaps()); err == nil || !strings.Contains(err.Error(), "base_url") {
		t.Fatalf("servers of another origin: %v", err)
	}
	if err := try(func(c *openapi.ImportConfig) { c.BaseURL = "http://api.example.com" }, petCaps()); err == nil || !strings.Contains(err.Error(), "https") {
		t.Fatalf("http off loopback: %v", err)
	}
	if err := try(func(c *openapi.ImportConfig) { c.AllowLoopbackHTTP = false }, petCaps()); err == nil {
		t.Fatal("an http source on loopback without allow_loopback_http")
	}
	if err := try(func(c *openapi.ImportConfig) { c.BaseURL = a.url }, core.Capabilities{}); err == nil || !strings.Contains(err.Error(), "http_token:pets") {
		t.Fatalf("a missing capability: %v", err)
	}
	// External $refs fail unfetched; Swagger 2.0 fails.
	for name, doc := range map[string]string{
		"external ref": `{"openapi":"3.0.3","info":{"title":"x","version":"1"},"paths":{"/a":{"get":{"responses":{"200":{"description":"x","content":{"application/json":{"schema":{"$ref":"http://127.0.0.1:1/evil.json#/X"}}}}}}}}}`,
		"swagger 2.0":  `{"swagger":"2.0","info":{"title":"x","version":"1"},"paths":{}}`,
	} {
		f := t.TempDir() + "/doc.json"
		if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := try(func(c *openapi.ImportConfig) { c.Source = f; c.BaseURL = a.url }, petCaps()); err == nil {
			t.Fatalf("%s: imported", name)
		}
	}
}
