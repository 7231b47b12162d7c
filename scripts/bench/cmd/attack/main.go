// Command attack replays the hostile-peer cases of docs/security.md against a running node
// (loopback only) and prints what the node did, so a change can be measured before and after
// with the same client:
//
//	attack frames --addr A --quic Q --pin P --pid N [--conns 40] [--streams 40]   announce 16 MiB frames, send 1 byte; node peak RSS
//	attack labels --addr A --pin P --metrics URL [--names 3000]          unknown operation names; /metrics size
//	attack tokens --addr A --pin P --token T [--wrong 50]                wrong tokens then a valid one; then a new connection
//	attack idle   --addr A --pin P [--conns 100] [--hold 70s]            idle TCP+TLS connections; how many the node closed
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/scripts/bench/internal/procstat"

	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/tlsconf"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: attack frames|labels|tokens|idle [flags]")
		os.Exit(1)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:7443", "node TCP+TLS address")
	quicAddr := fs.String("quic", "", "node QUIC address (default: --addr)")
	pin := fs.String("pin", "", "node fingerprint")
	pid := fs.Int("pid", 0, "node pid (for RSS)")
	conns := fs.Int("conns", 40, "connections")
	streams := fs.Int("streams", 40, "QUIC streams (frames)")
	names := fs.Int("names", 3000, "unknown operation names (labels)")
	size := fs.Int("size", 32, "bytes per operation name (labels)")
	metricsURL := fs.String("metrics", "http://127.0.0.1:9464/metrics", "metrics URL (labels)")
	token := fs.String("token", "", "a valid token (tokens)")
	wrong := fs.Int("wrong", 50, "wrong tokens (tokens)")
	hold := fs.Duration("hold", 5*time.Second, "how long to hold the connections")
	_ = fs.Parse(os.Args[2:])
	if *quicAddr == "" {
		*quicAddr = *addr
	}
	ctx := context.Background()
	creds := tlsconf.ConnectionCredentials{RemotePin: *pin}
	var err error
	switch os.Args[1] {
	case "frames":
		err = frames(ctx, *addr, *quicAddr, creds, *pid, *conns, *streams, *hold)
	case "labels":
		err = labels(ctx, *addr, creds, *names, *size, *metricsURL)
	case "tokens":
		err = tokens(ctx, *addr, creds, *token, *wrong)
	case "idle":
		err = idle(ctx, *addr, creds, *conns, *hold)
	default:
		err = fmt.Errorf("unknown case %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "attack:", err)
		os.Exit(1)
	}
}

var dialer client.Dialer

// vm returns pid's VmRSS, VmHWM and VmData in MiB (-1 when unknown).
func vm(pid int) (cur, peak, data float64) {
	m, err := procstat.Read(pid)
	if err != nil {
		return -1, -1, -1
	}
	return m.RSS, m.PeakRSS, m.Data
}

// dialTCPStream dials a TCP+TLS connection and returns it with its one stream.
func dialTCPStream(ctx context.Context, addr string, creds tlsconf.ConnectionCredentials) (conn.Connection, conn.Stream, error) {
	c, err := dialer.DialTCP(ctx, addr, "alknet/call", creds)
	if err != nil {
		return nil, nil, err
	}
	st, err := c.AcceptStream(ctx)
	if err != nil {
		_ = c.Close(0, "")
		return nil, nil, err
	}
	return c, st, nil
}

func frame(body string) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(len(body))) // prefix only; callers append
}

// frames announces 16 MiB frames and sends one byte of each, on conns TCP+TLS connections and
// streams QUIC streams (one QUIC connection per 10 streams).
func frames(ctx context.Context, addr, quicAddr string, creds tlsconf.ConnectionCredentials, pid, conns, streams int, hold time.Duration) error {
	_, peak0, data0 := vm(pid)
	announce := binary.BigEndian.AppendUint32(nil, 16<<20)
	announce = append(announce, '{')
	var open []conn.Connection
	defer func() {
		for _, c := range open {
			_ = c.Close(0, "")
		}
	}()
	for range conns {
		c, st, err := dialTCPStream(ctx, addr, creds)
		if err != nil {
			return err
		}
		open = append(open, c)
		if _, err := st.Write(announce); err != nil {
			return err
		}
	}
	var qc conn.Connection
	for i := range streams {
		if i%10 == 0 {
			c, err := dialer.DialQUIC(ctx, quicAddr, "alknet/call", creds)
			if err != nil {
				return err
			}
			open = append(open, c)
			qc = c
		}
		st, err := qc.OpenStream(ctx)
		if err != nil {
			return err
		}
		if _, err := st.Write(announce); err != nil {
			return err
		}
	}
	time.Sleep(hold)
	cur, peak, data := vm(pid)
	fmt.Printf("frames: %d TCP+TLS connections and %d QUIC streams announced 16 MiB and sent 1 byte each (%d bytes of bodies)\n", conns, streams, conns+streams)
	fmt.Printf("node RSS %.0f MiB, peak %.0f MiB (peak before %.0f MiB); heap reserved (VmData) %.0f MiB (before %.0f MiB)\n", cur, peak, peak0, data, data0)
	return nil
}

// labels sends names requests with unknown operation names of size bytes each, then reads /metrics.
func labels(ctx context.Context, addr string, creds tlsconf.ConnectionCredentials, names, size int, url string) error {
	c, st, err := dialTCPStream(ctx, addr, creds)
	if err != nil {
		return err
	}
	defer c.Close(0, "")
	go func() { _, _ = io.Copy(io.Discard, st) }()
	pad := strings.Repeat("x", max(size-12, 1))
	for i := range names {
		body := fmt.Sprintf(`{"type":"call.requested","id":"r%d","payload":{"operationId":"nope/%06d%s","input":{}}}`, i, i, pad)
		if _, err := st.Write(append(frame(body), body...)); err != nil {
			return err
		}
	}
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	fmt.Printf("labels: %d unknown operation names of %d bytes\n", names, size)
	fmt.Printf("/metrics: %d bytes, %d lines, scraped in %v\n", len(b), strings.Count(string(b), "\n"), time.Since(start).Round(time.Millisecond))
	return nil
}

// tokens sends wrong tokens and then a valid one on one anonymous connection, then dials again.
func tokens(ctx context.Context, addr string, creds tlsconf.ConnectionCredentials, valid string, wrong int) error {
	c, st, err := dialTCPStream(ctx, addr, creds)
	if err != nil {
		return err
	}
	defer c.Close(0, "")
	send := func(id, token string) error {
		body := fmt.Sprintf(`{"type":"call.requested","id":%q,"payload":{"operationId":"node/reload","input":{},"auth_token":%q}}`, id, token)
		_, err := st.Write(append(frame(body), body...))
		return err
	}
	// readUntil reads answers until the one for id (or the end of the connection).
	var prefix [4]byte
	readUntil := func(id string) string {
		for {
			if _, err := io.ReadFull(st, prefix[:]); err != nil {
				return "connection closed: " + err.Error()
			}
			body := make([]byte, binary.BigEndian.Uint32(prefix[:]))
			if _, err := io.ReadFull(st, body); err != nil {
				return "connection closed: " + err.Error()
			}
			if strings.Contains(string(body), fmt.Sprintf(`"id":%q`, id)) {
				return string(body)
			}
		}
	}
	start := time.Now()
	for i := range wrong {
		if err := send(fmt.Sprintf("w%d", i), fmt.Sprintf("alk_wrong%040d", i)); err != nil {
			return err
		}
		readUntil(fmt.Sprintf("w%d", i))
	}
	if err := send("valid", valid); err != nil {
		return err
	}
	last := readUntil("valid")
	fmt.Printf("tokens: %d wrong tokens then a valid one in %v\n", wrong, time.Since(start).Round(time.Millisecond))
	fmt.Printf("valid token's answer: %s\n", last)
	c2, err := dialer.DialTCP(ctx, addr, "alknet/call", creds)
	if err != nil {
		fmt.Printf("new connection: refused (%v)\n", err)
		return nil
	}
	defer c2.Close(0, "")
	st2, err := c2.AcceptStream(ctx)
	if err == nil {
		_ = st2.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = st2.Read(prefix[:])
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, conn.ErrTimeout):
		fmt.Println("new connection: accepted and kept open")
	default:
		fmt.Printf("new connection: closed by the node (%v)\n", err)
	}
	return nil
}

// idle opens conns TCP+TLS connections, half of them idle and half holding a partial frame,
// and reports how many the node still keeps open after hold.
func idle(ctx context.Context, addr string, creds tlsconf.ConnectionCredentials, conns int, hold time.Duration) error {
	var open []conn.Connection
	defer func() {
		for _, c := range open {
			_ = c.Close(0, "")
		}
	}()
	var closed atomic.Int64
	for i := range conns {
		c, st, err := dialTCPStream(ctx, addr, creds)
		if err != nil {
			return err
		}
		open = append(open, c)
		if i%2 == 1 {
			_, _ = st.Write([]byte{0, 0, 0, 100, '{'})
		}
		go func() {
			_, _ = io.Copy(io.Discard, st) // returns when the node closes the connection
			closed.Add(1)
		}()
	}
	time.Sleep(hold)
	alive := conns - int(closed.Load())
	fmt.Printf("idle: %d TCP+TLS connections (half idle, half holding a partial frame); after %v the node keeps %d open\n", conns, hold, alive)
	return nil
}
