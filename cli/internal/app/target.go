package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	callnode "github.com/alkdev/alknet/call/node"

	"github.com/urfave/cli/v3"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/identity"
)

const maxTicketFile = 4096

// clientFlags are the targeting flags of every client command (`alknet call --help`).
func clientFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "to", Usage: "target: a ticket (alk1…) or host:port with --pin (default: <state dir>/node.ticket)"},
		&cli.StringFlag{Name: "pin", Usage: "fingerprint to pin when --to is host:port (ed25519:<hex> or SHA256:<hex>)"},
		&cli.StringFlag{Name: "transport", Value: "auto", Usage: "quic, tcp or auto (QUIC, then TCP+TLS)"},
		&cli.StringFlag{Name: "key-file", Usage: "present this node key file as the TLS client certificate"},
		&cli.StringFlag{Name: "token-file", Usage: "send the token in this file as the request's auth_token (an alk_ API key or a peer token)"},
		&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "time limit for the call (a Go duration: 5s, 250ms)"},
		&cli.BoolFlag{Name: "json", Usage: "machine output"},
	}
}

// target parses --to/--pin, or the ticket a local node wrote to the state directory.
func target(c *cli.Command) (identity.Ticket, error) {
	to, pin := c.String("to"), c.String("pin")
	if to == "" {
		if pin != "" {
			return identity.Ticket{}, usageErr("--pin needs --to host:port")
		}
		return ticketFromStateDir(c.Root().String("state-dir"))
	}
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(to)), "alk1") {
		tk, err := identity.ParseTicket(to)
		if err != nil {
			return identity.Ticket{}, usageErr("--to: %v", err)
		}
		if pin != "" && pin != tk.Fingerprint {
			return identity.Ticket{}, usageErr("--pin %s conflicts with the ticket's fingerprint %s", pin, tk.Fingerprint)
		}
		return tk, nil
	}
	if _, _, err := net.SplitHostPort(to); err != nil {
		return identity.Ticket{}, usageErr("--to %q: want a ticket (alk1…) or host:port", to)
	}
	if pin == "" {
		return identity.Ticket{}, usageErr("--to host:port needs --pin <fingerprint>")
	}
	if err := identity.CheckFingerprint(pin); err != nil {
		return identity.Ticket{}, usageErr("--pin: %v", err)
	}
	return identity.Ticket{Fingerprint: pin, QUIC: []string{to}, TCP: []string{to}}, nil
}

func ticketFromStateDir(flag string) (identity.Ticket, error) {
	dir, err := stateDir(flag)
	if err != nil {
		return identity.Ticket{}, configErr(err)
	}
	f, err := os.Open(filepath.Join(dir, ticketFile))
	if err != nil {
		return identity.Ticket{}, connErr("NO_TARGET", fmt.Errorf("no --to and no node ticket in %s", dir))
	}
	defer f.Close()
	buf := make([]byte, maxTicketFile)
	n, _ := f.Read(buf)
	tk, err := identity.ParseTicket(string(buf[:n]))
	if err != nil {
		return identity.Ticket{}, configErr(fmt.Errorf("%s: %w", filepath.Join(dir, ticketFile), err))
	}
	return tk, nil
}

// session is a client connection running a call.Conn.
type session struct{ conn *call.Conn }

func (s *session) close() { _ = s.conn.Close() }

// connect dials the target of c and starts a call.Conn on the connection.
func connect(ctx context.Context, e *env, c *cli.Command) (*session, error) {
	tk, err := target(c)
	if err != nil {
		return nil, err
	}
	switch c.String("transport") {
	case "quic":
		tk.TCP = nil
	case "tcp":
		tk.QUIC = nil
	case "auto":
	default:
		return nil, usageErr("--transport %q: want quic, tcp or auto", c.String("transport"))
	}
	o := callnode.DialOptions{Dialer: client.Dialer{Logger: e.log},
		Conn: call.ConnOptions{Logger: e.log, CallTimeout: c.Duration("timeout")}}
	if kf := c.String("key-file"); kf != "" {
		if o.Key, err = identity.LoadKeyFile(kf, e.log); err != nil {
			return nil, configErr(err)
		}
	}
	if tf := c.String("token-file"); tf != "" {
		tok, err := readSecretFile(tf, true)
		if err != nil {
			return nil, err
		}
		o.Conn.AuthToken = string(tok) // bearer tokens may be strings where an API needs one
		clear(tok)
	}
	dialCtx, cancel := context.WithTimeout(ctx, c.Duration("timeout"))
	defer cancel()
	stopSpin := e.spin("connecting to " + tk.Fingerprint[:20] + "…")
	cc, err := callnode.DialTicket(dialCtx, tk, o)
	stopSpin()
	if err != nil {
		word := "UNREACHABLE"
		if client.IsKind(err, client.DialHandshake) {
			word = "TLS"
		}
		if isPinMismatch(err) {
			word = "PIN_MISMATCH"
		}
		if client.IsKind(err, client.DialConfig) || errors.Is(err, callnode.ErrNoAddress) {
			return nil, configErr(err)
		}
		return nil, connErr(word, err)
	}
	return &session{conn: cc}, nil
}
