package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/adapters/catalog"
	"github.com/alkdev/alknet/adapters/gateway"
	"github.com/alkdev/alknet/adapters/internal/adaptertest"
	"github.com/alkdev/alknet/call/node"
	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/host"
	"github.com/alkdev/alknet/core/tlsconf"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// docs/http.md §3.1, checklist 1.
func TestSurfaces(t *testing.T) {
	tn := adaptertest.Start(t, adaptertest.Config{})
	for _, kind := range []string{"h2", "http/1.1", "loopback"} {
		t.Run(kind, func(t *testing.T) {
			c, base := tn.HTTPClient(t, kind, nil)
			r := adaptertest.Do(t, c, "POST", base+"/ops/demo/add", `{"a":2,"b":40}`, nil)
			if r.Status != 200 || strings.TrimSpace(string(r.Body)) != `{"sum":42}` {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			if !uuidRE.MatchString(r.Header.Get("X-Request-Id")) {
				t.Fatalf("X-Request-Id %q", r.Header.Get("X-Request-Id"))
			}
			if want := map[string]string{"h2": "HTTP/2.0", "http/1.1": "HTTP/1.1", "loopback": "HTTP/1.1"}[kind]; r.Proto != want {
				t.Fatalf("protocol %s, want %s", r.Proto, want)
			}
			unknown := adaptertest.Do(t, c, "POST", base+"/ops/test/nope", `{}`, nil)
			hidden := adaptertest.Do(t, c, "POST", base+"/ops/test/hidden", `{}`, nil)
			pu, ph := unknown.Problem(t), hidden.Problem(t)
			if unknown.Status != 404 || hidden.Status != 404 || pu["code"] != "NOT_FOUND" || ph["code"] != "NOT_FOUND" {
				t.Fatalf("unknown %d %s, internal %d %s", unknown.Status, unknown.Body, hidden.Status, hidden.Body)
			}
			if strings.ReplaceAll(pu["message"].(string), "test/nope", "X") != strings.ReplaceAll(ph["message"].(string), "test/hidden", "X") {
				t.Fatalf("unknown and internal differ: %q / %q", pu["message"], ph["message"])
			}
		})
	}
	t.Run("node/info lists the HTTP ALPNs", func(t *testing.T) {
		c, base := tn.HTTPClient(t, "loopback", nil)
		r := adaptertest.Do(t, c, "POST", base+"/ops/node/info", "", nil)
		var info struct{ ALPNs []string }
		_ = json.Unmarshal(r.Body, &info)
		if got := strings.Join(info.ALPNs, ","); got != "alknet/call,h2,http/1.1" {
			t.Fatalf("node/info alpns %q (%s)", got, r.Body)
		}
	})
	t.Run("QUIC does not offer h2", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var d client.Dialer
		_, err := d.DialQUIC(ctx, tn.N.QUICAddrs()[0].String(), "h2", tlsconf.ConnectionCredentials{RemotePin: tn.N.Fingerprint()})
		if err == nil {
			t.Fatal("a QUIC client offering only h2 connected")
		}
	})
}

// docs/http.md §3.4, checklist 2.
func TestIdentity(t *testing.T) {
	tn := adaptertest.Start(t, adaptertest.Config{})
	c, base := tn.HTTPClient(t, "loopback", nil)
	url := base + "/ops/test/admin"
	r := adaptertest.Do(t, c, "POST", url, "", nil)
	if p := r.Problem(t); r.Status != 401 || r.Header.Get("WWW-Authenticate") != `Bearer realm="alknet"` || p["code"] != "FORBIDDEN" {
		t.Fatalf("no credentials: %d %q %s", r.Status, r.Header.Get("WWW-Authenticate"), r.Body)
	}
	r = adaptertest.Do(t, c, "POST", url, "", adaptertest.Bearer("alk_nope-nope-nope"))
	if p := r.Problem(t); r.Status != 401 || r.Header.Get("WWW-Authenticate") != `Bearer realm="alknet", error="invalid_token"` ||
		p["message"] != "unknown or revoked API key" {
		t.Fatalf("bad token: %d %q %s", r.Status, r.Header.Get("WWW-Authenticate"), r.Body)
	}
	if r = adaptertest.Do(t, c, "POST", url, "", adaptertest.Bearer(tn.UserToken)); r.Status != 403 {
		t.Fatalf("non-admin: %d %s", r.Status, r.Body)
	}
	if r = adaptertest.Do(t, c, "POST", url, "", adaptertest.Bearer(tn.AdminToken)); r.Status != 200 {
		t.Fatalf("admin key: %d %s", r.Status, r.Body)
	}
	// A client certificate of an admin peer, on the TLS route; a Bearer overrides it for its
	// request only.
	tc, tbase := tn.HTTPClient(t, "h2", tn.PeerKey)
	if r = adaptertest.Do(t, tc, "POST", tbase+"/ops/test/admin", "", nil); r.Status != 200 {
		t.Fatalf("admin certificate: %d %s", r.Status, r.Body)
	}
	if r = adaptertest.Do(t, tc, "POST", tbase+"/ops/test/admin", "", adaptertest.Bearer(tn.UserToken)); r.Status != 403 {
		t.Fatalf("certificate + user Bearer: %d %s", r.Status, r.Body)
	}
	if r = adaptertest.Do(t, tc, "POST", tbase+"/ops/test/admin", "", nil); r.Status != 200 {
		t.Fatalf("the Bearer stuck to the connection: %d %s", r.Status, r.Body)
	}
	// One audit line per request with a token.
	before := strings.Count(tn.Logs.String(), "msg=auth ")
	adaptertest.Do(t, c, "POST", url, "", adaptertest.Bearer(tn.AdminToken))
	if n := strings.Count(tn.Logs.String(), "msg=auth ") - before; n != 1 {
		t.Fatalf("%d auth lines for one request", n)
	}
}

// docs/http.md §2.2, checklist 3.
func TestTokenFailuresOnLoopback(t *testing.T) {
	tn := adaptertest.Start(t, adaptertest.Config{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(tn.Loopback, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	send := func() *http.Response {
		req, _ := http.NewRequest("POST", tn.Loopback+"/ops/test/admin", nil)
		req.Header.Set("Authorization", "Bearer alk_wrong-wrong-wrong")
		if err := req.Write(conn); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for i := range 5 {
		if resp := send(); resp.StatusCode != 401 {
			t.Fatalf("attempt %d: %d", i+1, resp.StatusCode)
		}
	}
	resp := send()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "60" {
		t.Fatalf("6th bad token: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("connection still open after 429")
	}
	if !strings.Contains(tn.Logs.String(), "result=blocked") {
		t.Fatal("no blocked audit line")
	}
	// A new loopback connection and the node's own clients still work.
	c, base := tn.HTTPClient(t, "loopback", nil)
	if r := adaptertest.Do(t, c, "POST", base+"/ops/test/admin", "", adaptertest.Bearer(tn.AdminToken)); r.Status != 200 {
		t.Fatalf("new connection: %d %s", r.Status, r.Body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cc, err := node.Dial(ctx, tn.N.TicketString(), node.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if _, err := cc.Call(ctx, "demo/add", json.RawMessage(`{"a":1,"b":2}`)); err != nil {
		t.Fatalf("alknet/call after loopback failures: %v", err)
	}
}

// An anonymous TLS client guessing tokens is limited per IP (docs/http.md §2.2).
func TestTokenFailuresOnTLSBlockTheIP(t *testing.T) {
	tn := adaptertest.Start(t, adaptertest.Config{})
	c, base := tn.HTTPClient(t, "h2", nil)
	var last adaptertest.Reply
	for range 6 {
		last = adaptertest.Do(t, c, "POST", base+"/ops/test/admin", "", adaptertest.Bearer("alk_wrong-wrong-wrong"))
	}
	if last.Status != 429 {
		t.Fatalf("6th bad token on TLS: %d %s", last.Status, last.Body)
	}
	if !tn.N.Auth.Blocked(&net.TCPAddr{IP: net.ParseIP("127.0.0.1")}) {
		t.Fatal("the anonymous TLS client's IP is not blocked")
	}
}

// docs/http.md §3.5, checklist 4.
func TestProblems(t *testing.T) {
	tn := adaptertest.Start(t, adaptertest.Config{Gateway: gateway.Options{MaxBodyBytes: 1 << 16}})
	c, base := tn.HTTPClient(t, "loopback", nil)
	big := `{"text":"` + strings.Repeat("x", 1<<16) + `"}`
	tests := []struct {
		name, method, path, body string
		hdr                      map[string]string
		status                   int
		code                     string
	}{
		{"wrong types", "POST", "/ops/demo/add", `{"a":"x","b":1}`, nil, 400, "INVALID_INPUT"},
		{"text/plain", "POST", "/ops/demo/add", `{"a":1,"b":1}`, map[string]string{"Content-Type": "text/plain"}, 415, "INVALID_INPUT"},
		{"charset", "POST", "/ops/demo/add", `{"a":1,"b":1}`, map[string]string{"Content-Type": "application/json; charset=latin1"}, 415, "INVALID_INPUT"},
		{"bad JSON", "POST", "/ops/demo/add", `{"a":`, nil, 400, "INVALID_INPUT"},
		{"two values", "POST", "/ops/demo/add", `{} {}`, nil, 400, "INVALID_INPUT"},
		{"too big", "POST", "/ops/demo/echo", big, nil, 413, "INVALID_INPUT"},
		{"GET", "GET", "/ops/demo/add", "", nil, 405, "INVALID_INPUT"},
		{"a prefix of POST", "POS", "/ops/demo/add", "", nil, 405, "INVALID_INPUT"},
		{"other path", "GET", "/nope", "", nil, 404, "NOT_FOUND"},
		{"timeout", "POST", "/ops/demo/sleep", `{"ms":5000}`, map[string]string{gateway.TimeoutHeader: "1000"}, 504, "TIMEOUT"},
		{"panic", "POST", "/ops/test/panic", "", nil, 500, "INTERNAL"},
		{"declared 409", "POST", "/ops/test/conflict", "", nil, 409, "CONFLICT"},
		{"declared, no status", "POST", "/ops/test/gone", "", nil, 422, "GONE"},
		{"undeclared", "POST", "/ops/test/undeclared", "", nil, 500, "INTERNAL"},
		{"timeout 0", "POST", "/ops/demo/add", `{"a":1,"b":1}`, map[string]string{gateway.TimeoutHeader: "0"}, 400, "INVALID_INPUT"},
		{"timeout 1e3", "POST", "/ops/demo/add", `{"a":1,"b":1}`, map[string]string{gateway.TimeoutHeader: "1e3"}, 400, "INVALID_INPUT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := adaptertest.Do(t, c, tc.method, base+tc.path, tc.body, tc.hdr)
			p := r.Problem(t)
			if r.Status != tc.status || p["code"] != tc.code || p["status"] != float64(tc.status) {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Body, tc.status, tc.code)
			}
			if tc.status == 405 && r.Header.Get("Allow") != "POST, OPTIONS" {
				t.Fatalf("Allow %q", r.Header.Get("Allow"))
			}
			if tc.code == "TIMEOUT" && time.Since(start) > 2*time.Second {
				t.Fatalf("504 after %v", time.Since(start))
			}
			if details, _ := p["details"].(map[string]any); tc.name == "undeclared" && details["original_code"] != "SURPRISE" {
				t.Fatalf("original_code: %s", r.Body)
			}
		})
	}
	t.Run("chunked too big", func(t *testing.T) {
		req, _ := http.NewRequest("POST", base+"/ops/demo/echo", io.MultiReader(strings.NewReader(big)))
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = -1
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Fatalf("%d", resp.StatusCode)
		}
	})
	t.Run("empty body is {}", func(t *testing.T) {
		r := adaptertest.Do(t, c, "POST", base+"/ops/node/health", "", map[string]string{"Content-Type": ""})
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
	t.Run("big numbers round-trip", func(t *testing.T) {
		r := adaptertest.Do(t, c, "POST", base+"/ops/demo/echo", `{"text":"18446744073709551617"}`, nil)
		if string(r.Body) != `{"text":"18446744073709551617"}` {
			t.Fatalf("%s", r.Body)
		}
		r = adaptertest.Do(t, c, "POST", base+"/ops/demo/add", `{"a":18446744073709551617,"b":0}`, nil)
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		// The bytes reach the operation as sent: schema/number echoes its input.
		r = adaptertest.Do(t, c, "POST", base+"/ops/schema/number", `18446744073709551617`, nil)
		if r.Status != 200 || string(r.Body) != `18446744073709551617` {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
	t.Run("431", func(t *testing.T) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(tn.Loopback, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /ops/node/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: %s\r\nContent-Length: 0\r\n\r\n", strings.Repeat("a", 65<<10))
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 431 ") {
			t.Fatalf("%q %v", line, err)
		}
	})
}

// docs/http.md §3.2, §3.5.5, checklist 5.
func TestInFlightAndCancel(t *testing.T) {
	tn := adaptertest.Start(t, adaptertest.Config{Gateway: gateway.Options{MaxInFlight: 2}})
	c, base := tn.HTTPClient(t, "loopback", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	for range 2 {
		go func() {
			defer func() { done <- struct{}{} }()
			req, _ := http.NewRequestWithContext(ctx, "POST", base+"/ops/test/block", nil)
			if resp, err := c.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	eventually(t, func() bool { return tn.Blocking.Load() == 2 })
	if r := adaptertest.Do(t, c, "POST", base+"/ops/demo/add", `{"a":1,"b":1}`, nil); r.Status != 503 || r.Header.Get("Retry-After") != "1" {
		t.Fatalf("third call: %d %v", r.Status, r.Header)
	}
	// A client that goes away (HTTP/1.1: the connection closes) cancels its call within 1 s.
	cancel()
	<-done
	<-done
	eventually(t, func() bool { return tn.Cancelled.Load() == 2 })
	for _, kind := range []string{"h2"} {
		hc, hbase := tn.HTTPClient(t, kind, nil)
		rctx, rcancel := context.WithCancel(context.Background())
		go func() { time.Sleep(200 * time.Millisecond); rcancel() }()
		req, _ := http.NewRequestWithContext(rctx, "POST", hbase+"/ops/test/block", nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
		}
		eventually(t, func() bool { return tn.Cancelled.Load() == 3 })
	}
}

// eventually polls cond for up to 1 s (CP §18: no bound under 1 s).
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 1 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// docs/http.md §3.6, checklist 6.
func TestSSE(t *testing.T) {
	tn := adaptertest.Start(t, adaptertest.Config{})
	c, base := tn.HTTPClient(t, "h2", nil)
	r := adaptertest.Do(t, c, "POST", base+"/ops/demo/ticker", `{"count":3,"interval_ms":1}`, nil)
	want := "id: 0\ndata: {\"tick\":0}\n\nid: 1\ndata: {\"tick\":1}\n\nid: 2\ndata: {\"tick\":2}\n\nevent: done\ndata: {}\n\n"
	if r.Status != 200 || r.Header.Get("Content-Type") != "text/event-stream" || string(r.Body) != want {
		t.Fatalf("%d %q %q", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	// Headers come before the first item.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/ops/demo/ticker", strings.NewReader(`{"count":2,"interval_ms":10000}`))
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil || resp.StatusCode != 200 || time.Since(start) > time.Second {
		t.Fatalf("%v after %v", err, time.Since(start))
	}
	cancel()
	resp.Body.Close()
	r = adaptertest.Do(t, c, "POST", base+"/ops/test/fail-after-one", "", nil)
	if !strings.HasPrefix(string(r.Body), "id: 0\ndata: {\"n\":1}\n\nevent: error\ndata: {") || !strings.Contains(string(r.Body), `"message":"broke"`) {
		t.Fatalf("%q", r.Body)
	}
	for path, status := range map[string]int{"/ops/test/nope": 404, "/ops/test/admin-stream": 401} {
		r = adaptertest.Do(t, c, "POST", base+path, "", nil)
		r.Problem(t)
		if r.Status != status {
			t.Fatalf("%s: %d", path, r.Status)
		}
	}
}

// docs/http.md §3.6.3, checklist 7: a stalled reader loses nothing until sse_write_timeout.
func TestSSESlowReader(t *testing.T) {
	tn := adaptertest.Start(t, adaptertest.Config{Gateway: gateway.Options{SSEWriteTimeout: time.Second}})
	conn, err := net.Dial("tcp", strings.TrimPrefix(tn.Loopback, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	body := `{"count":0,"interval_ms":0,"pad":65536}`
	fmt.Fprintf(conn, "POST /ops/demo/ticker HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	// Never read: the stream must be cut (and the call aborted) after about a second.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if strings.Contains(tn.Logs.String(), "op=demo/ticker") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stalled SSE stream was not ended within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// docs/http.md §3.3, checklists 8 and 9.
func TestHostCSRFAndCORS(t *testing.T) {
	tn := adaptertest.Start(t, adaptertest.Config{Gateway: gateway.Options{CORSOrigins: []string{"https://app.example"}}})
	c, base := tn.HTTPClient(t, "loopback", nil)
	for _, path := range []string{"/ops/demo/add", "/openapi.json"} {
		method := "POST"
		if path == "/openapi.json" {
			method = "GET"
		}
		r := adaptertest.Do(t, c, method, base+path, `{"a":1,"b":1}`, map[string]string{"Host": "evil.example"})
		if r.Status != 403 {
			t.Fatalf("%s with a foreign Host: %d", path, r.Status)
		}
	}
	// A cross-site browser write from another origin.
	r := adaptertest.Do(t, c, "POST", base+"/ops/demo/add", `{"a":1,"b":1}`, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
	if r.Status != 403 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("cross-site POST: %d %v", r.Status, r.Header)
	}
	// The allowed origin: preflight, then the POST.
	pre := adaptertest.Do(t, c, "OPTIONS", base+"/ops/demo/add", "", map[string]string{"Origin": "https://app.example",
		"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"})
	if pre.Status != 204 || !strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "authorization") {
		t.Fatalf("preflight: %d %v", pre.Status, pre.Header)
	}
	r = adaptertest.Do(t, c, "POST", base+"/ops/demo/add", `{"a":1,"b":1}`, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://app.example"})
	if r.Status != 200 || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(strings.Join(r.Header.Values("Vary"), ","), "Origin") || r.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("allowed origin: %d %v", r.Status, r.Header)
	}
	// Slow headers: the connection is closed after ReadHeaderTimeout (10 s by default; the
	// option is shortened in TestSlowHeaders).
}

func TestSlowHeaders(t *testing.T) {
	tn := adaptertest.Start(t, adaptertest.Config{Gateway: gateway.Options{ReadHeaderTimeout: time.Second}})
	conn, err := net.Dial("tcp", strings.TrimPrefix(tn.Loopback, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "POST /ops/demo/add HTTP/1.1\r\nHost: 127.0.0.1\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("slow headers kept the connection open")
	}
}

// docs/http.md §3.1.5, checklist 10: shutdown ends SSE streams; a unary call finishes within the drain.
func TestShutdown(t *testing.T) {
	tn := adaptertest.Start(t, adaptertest.Config{})
	c, base := tn.HTTPClient(t, "loopback", nil)
	sseDone := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("POST", base+"/ops/demo/ticker", strings.NewReader(`{"count":0,"interval_ms":50}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			sseDone <- err
			return
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		sseDone <- err
	}()
	unary := make(chan adaptertest.Reply, 1)
	go func() { unary <- adaptertest.Do(t, c, "POST", base+"/ops/demo/sleep", `{"ms":500}`, nil) }()
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := tn.N.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	select {
	case <-sseDone:
	case <-time.After(time.Second):
		t.Fatal("SSE stream still open after shutdown")
	}
	if r := <-unary; r.Status != 200 {
		t.Fatalf("unary call during drain: %d %s", r.Status, r.Body)
	}
}

// docs/http.md §3.2, §3.1.4 (checklist 7): a client that does not read a large answer is cut
// after write_timeout; an SSE stream outlives three single-stream idle timeouts.
func TestWriteTimeoutAndIdleTimer(t *testing.T) {
	tn := adaptertest.Start(t, adaptertest.Config{Gateway: gateway.Options{WriteTimeout: time.Second},
		Limits: config.Limits{SingleStreamIdleTimeout: time.Second}})
	conn, err := net.Dial("tcp", strings.TrimPrefix(tn.Loopback, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprint(conn, "POST /ops/test/big HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(tn.Logs.String(), "op=test/big") {
		if time.Now().After(deadline) {
			t.Fatal("a non-reading client held its answer past write_timeout for 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// SSE over the TLS route for 3.5 s against a 1 s single-stream idle timer.
	c, base := tn.HTTPClient(t, "http/1.1", nil)
	r := adaptertest.Do(t, c, "POST", base+"/ops/demo/ticker", `{"count":8,"interval_ms":500}`, nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), `data: {"tick":7}`) || !strings.HasSuffix(string(r.Body), "event: done\ndata: {}\n\n") {
		t.Fatalf("SSE past the idle timer: %d %q", r.Status, r.Body)
	}
}

// docs/http.md §4.4 (checklist 12): the TLS surface's document has the mtls scheme, the
// loopback one does not; checklist 10: a canary token appears in no log past 8 characters.
func TestDocumentSurfacesAndTokenCanary(t *testing.T) {
	tn := adaptertest.Start(t, adaptertest.Config{})
	lc, lbase := tn.HTTPClient(t, "loopback", nil)
	tc, tbase := tn.HTTPClient(t, "h2", nil)
	loop := adaptertest.Do(t, lc, "GET", lbase+"/openapi.json", "", nil)
	tls := adaptertest.Do(t, tc, "GET", tbase+"/openapi.json", "", nil)
	if strings.Contains(string(loop.Body), "mutualTLS") || !strings.Contains(string(tls.Body), `"mtls":{"description"`) {
		t.Fatal("mtls on the wrong surface")
	}
	if !strings.Contains(string(loop.Body), `"servers":[{"url":"`+tn.Loopback+`"}]`) || !strings.Contains(string(tls.Body), `"url":"https://`+tn.TLSAddr+`"`) {
		t.Fatal("servers entry")
	}
	if loop.Header.Get("Cache-Control") != "no-store" || !strings.Contains(strings.Join(loop.Header.Values("Vary"), ","), "Authorization") {
		t.Fatalf("document headers %v", loop.Header)
	}
	const canary = "alk_CANARYabcdefghijklmnopqrstuvwxyz0123456789"
	adaptertest.Do(t, lc, "POST", lbase+"/ops/test/admin", "", adaptertest.Bearer(canary))
	if strings.Contains(tn.Logs.String(), canary[:9]) {
		t.Fatalf("the canary token is in the log past 8 characters:\n%s", tn.Logs.String())
	}
}

// A node whose gateway cannot bind its loopback listener does not start, and leaves nothing
// running (goleak checks the gateway's server goroutines).
func TestStartFailureStopsTheGateway(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cat := catalog.ForNode("test")
	gw, err := gateway.New(gateway.Options{Catalog: cat, TLSRoute: true, LoopbackListen: taken.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.Start(node.Options{Addons: []node.Addon{cat, gw}, Host: host.Options{Logger: slog.New(slog.DiscardHandler)}}); err == nil {
		t.Fatal("a node started with its HTTP address taken")
	}
}
