package client_test

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/core/internal/testnode"
	"github.com/alkdev/alknet/core/tlsconf"
)

// events records a race's trace.
type events struct {
	mu  sync.Mutex
	evs []client.RaceEvent
}

func (e *events) add(ev client.RaceEvent) { e.mu.Lock(); e.evs = append(e.evs, ev); e.mu.Unlock() }

func (e *events) phases() map[conn.Transport][]client.RacePhase {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[conn.Transport][]client.RacePhase{}
	for _, ev := range e.evs {
		out[ev.Transport] = append(out[ev.Transport], ev.Phase)
	}
	return out
}

func TestDialRace(t *testing.T) {
	both := echoNode(t, testnode.Options{})
	tcpOnly := echoNode(t, testnode.Options{NoQUIC: true})
	fp := both.Key.Fingerprint()
	// A UDP port nobody answers on: QUIC can only time out there.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	closed := testnode.LoopbackAddr(t) // nothing listens on it, UDP or TCP
	d := &client.Dialer{HandshakeTimeout: 10 * time.Second}

	tests := []struct {
		name    string
		ticket  identity.Ticket
		want    conn.Transport // "" = the race fails
		wantErr client.DialKind
		within  time.Duration // a correctness bound (far above the expected time), not a speed claim
	}{
		{"both transports: QUIC wins", identity.Ticket{Fingerprint: fp, QUIC: []string{both.QUIC}, TCP: []string{both.TCP}}, conn.TransportQUIC, 0, 5 * time.Second},
		{"TCP only: TCP after the delay, not the handshake timeout", identity.Ticket{Fingerprint: tcpOnly.Key.Fingerprint(), QUIC: []string{silent.LocalAddr().String()}, TCP: []string{tcpOnly.TCP}}, conn.TransportTCPTLS, 0, 5 * time.Second},
		{"refused on both: fails fast", identity.Ticket{Fingerprint: fp, QUIC: []string{closed}, TCP: []string{closed}}, "", client.DialConnect, 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ev events
			start := time.Now()
			c, err := client.DialRace(ctxT(t), d, tc.ticket, alpn, tlsconf.ConnectionCredentials{}, client.RaceOptions{Trace: ev.add})
			took := time.Since(start)
			if took > tc.within {
				t.Fatalf("took %v (the handshake timeout is %v)", took, d.HandshakeTimeout)
			}
			if tc.want == "" {
				if !client.IsKind(err, tc.wantErr) {
					t.Fatalf("err %v, want kind %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(0, "")
			if c.Transport() != tc.want {
				t.Fatalf("won by %s, want %s; trace %v", c.Transport(), tc.want, ev.phases())
			}
			if ph := ev.phases()[tc.want]; len(ph) < 2 || ph[len(ph)-1] != client.AttemptWon {
				t.Fatalf("trace of the winner: %v", ph)
			}
		})
	}

	t.Run("wrong key ends the race with the handshake error", func(t *testing.T) {
		wrong, _ := identity.Generate()
		tk := identity.Ticket{Fingerprint: wrong.Fingerprint(), QUIC: []string{both.QUIC}, TCP: []string{both.TCP}}
		_, err := client.DialRace(ctxT(t), d, tk, alpn, tlsconf.ConnectionCredentials{}, client.RaceOptions{})
		if !errors.Is(err, tlsconf.ErrPinMismatch) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("a loser that connects is closed", func(t *testing.T) {
		var ev events
		// Both start at once (a negligible delay): one wins, the other is closed or cancelled.
		tk := identity.Ticket{Fingerprint: fp, QUIC: []string{both.QUIC}, TCP: []string{both.TCP}}
		c, err := client.DialRace(ctxT(t), d, tk, alpn, tlsconf.ConnectionCredentials{}, client.RaceOptions{Delay: time.Nanosecond, Trace: ev.add})
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Close(0, "")
		ph := ev.phases()
		loser := conn.TransportTCPTLS
		if c.Transport() == conn.TransportTCPTLS {
			loser = conn.TransportQUIC
		}
		if l := ph[loser]; len(l) != 2 || (l[1] != client.AttemptClosed && l[1] != client.AttemptFailed) {
			t.Fatalf("loser's trace %v", l)
		}
	})
	t.Run("no address", func(t *testing.T) {
		_, err := client.DialRace(ctxT(t), d, identity.Ticket{Fingerprint: fp}, alpn, tlsconf.ConnectionCredentials{}, client.RaceOptions{})
		if !client.IsKind(err, client.DialConfig) {
			t.Fatalf("err %v", err)
		}
	})
}

// A QUIC dial to a closed UDP port fails at once: the ICMP refusal reaches the dialer.
func TestDialQUICRefusedFast(t *testing.T) {
	d := &client.Dialer{HandshakeTimeout: 10 * time.Second}
	k, _ := identity.Generate()
	start := time.Now()
	_, err := d.DialQUIC(ctxT(t), testnode.LoopbackAddr(t), alpn, tlsconf.ConnectionCredentials{RemotePin: k.Fingerprint()})
	if !client.IsKind(err, client.DialConnect) {
		t.Fatalf("err %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("a refused port took %v", took)
	}
}
