package metrics

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/alkdev/alknet/core/endpoint"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Operation labels are capped: past MaxOperations names, calls count under "other", and a
// scrape runs while calls are recorded (no lock of CallDone held by the scrape).
func TestOperationLabelsCapped(t *testing.T) {
	r := New()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1500 {
				r.CallDone(fmt.Sprintf("op/%d", g*1500+i), "", time.Millisecond)
			}
		}()
	}
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	for range 5 { // scrapes concurrent with the calls
		resp, err := srv.Client().Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	wg.Wait()
	text := scrape(t, srv)
	if got := strings.Count(text, "alknet_calls_total{"); got != MaxOperations+1 {
		t.Fatalf("%d call series, want %d (MaxOperations and other)", got, MaxOperations+1)
	}
	if !strings.Contains(text, `alknet_calls_total{code="OK",op="other"} 5000`) {
		t.Fatalf("the calls beyond the cap are not counted as other:\n%s", grep(text, `op="other"`))
	}
	for _, want := range []string{"go_goroutines", "process_resident_memory_bytes", `alknet_connections_active{transport="quic"} 0`} {
		if !strings.Contains(text, want) {
			t.Errorf("no %s", want)
		}
	}
}

func grep(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Per-peer connection counts come from the endpoint's snapshot at scrape time, capped.
func TestPeerConnections(t *testing.T) {
	r := New()
	byPeer := map[string]int{"anonymous": 2, "alice": 1}
	for i := range MaxPeerLabels + 5 {
		byPeer[fmt.Sprintf("peer%05d", i)] = 1
	}
	if err := r.WatchConnections(func() endpoint.Stats { return endpoint.Stats{ByPeer: byPeer} }); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	text := scrape(t, srv)
	if got := strings.Count(text, "alknet_peer_connections{"); got != MaxPeerLabels+1 {
		t.Fatalf("%d peer series, want %d", got, MaxPeerLabels+1)
	}
	for _, want := range []string{`alknet_peer_connections{peer="alice"} 1`, `alknet_peer_connections{peer="anonymous"} 2`, `alknet_peer_connections{peer="other"} 7`} {
		if !strings.Contains(text, want) {
			t.Errorf("no %s in\n%s", want, grep(text, "alknet_peer_connections{peer=\"[ao]"))
		}
	}
}

// scrape returns the /metrics page of srv.
func scrape(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// The iroh series come from the endpoint's figures at scrape time; the refusal reasons are a
// fixed set, present as zeros.
func TestIrohMetrics(t *testing.T) {
	r := New()
	if err := r.WatchIroh(func() IrohStats {
		return IrohStats{Up: true, Direct: 2, Relay: 1, RelayConnected: true, Refused: map[string]uint64{"limit_ip": 3, "forged": 9}}
	}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	text := scrape(t, srv)
	for _, want := range []string{"alknet_iroh_up 1", `alknet_iroh_connections{path="direct"} 2`, `alknet_iroh_connections{path="relay"} 1`,
		"alknet_iroh_relay_connected 1", `alknet_iroh_refused_total{reason="limit_ip"} 3`, `alknet_iroh_refused_total{reason="backlog"} 0`} {
		if !strings.Contains(text, want) {
			t.Errorf("no %s in\n%s", want, grep(text, "alknet_iroh"))
		}
	}
	if strings.Contains(text, "forged") {
		t.Error("a reason outside the fixed set became a label")
	}
}
