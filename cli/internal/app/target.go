package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	callnode "github.com/alkdev/alknet/call/node"

	"github.com/urfave/cli/v3"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/iroh"
)

const maxTicketFile = 4096

// clientFlags are the targeting flags of every client command (`alknet call --help`);
// withTimeout adds --timeout (not for subscriptions, which have no deadline).
func clientFlags(withTimeout bool) []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "to", Usage: "target: a ticket (alk1…), host:port with --pin (with --transport iroh: one iroh address), or ed25519:<key> (over iroh, found through number 0's lookup) (default: <state dir>/node.ticket)"},
		&cli.StringFlag{Name: "pin", Usage: "fingerprint to pin when --to is host:port (ed25519:<hex> or SHA256:<hex>)"},
		&cli.StringFlag{Name: "transport", Value: "auto", Usage: "quic, tcp, iroh (the ticket's iroh records only) or auto (race QUIC and TCP+TLS, QUIC first; TCP+TLS after 250ms or at once if QUIC fails)"},
		&cli.StringFlag{Name: "key-file", Usage: "present this node key file as the TLS client certificate"},
		&cli.StringFlag{Name: "token-file", Usage: "send the token in this file as the request's auth_token (an alk_ API key or a peer token)"},
		&cli.BoolFlag{Name: "stream-per-call", Usage: "open a QUIC stream per call instead of pipelining calls over a few long-lived ones (for nodes that serve a stream's requests one at a time, such as Rust nodes)"},
	}
	if withTimeout {
		flags = append(flags, &cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "time limit for dialing and the call (a Go duration: 5s, 250ms)"})
	}
	return append(flags,
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "show the dial (transports tried, timings, the winner, the pin check), the request id and each event, on stderr"},
		jsonFlag(),
	)
}

// dialBudget is how long a command without --timeout (sub) may take to connect.
const dialBudget = 30 * time.Second

// timeoutOf is --timeout where the command has it, else the dial budget.
func timeoutOf(c *cli.Command) time.Duration {
	if d := c.Duration("timeout"); d > 0 {
		return d
	}
	return dialBudget
}

// target parses --to/--pin, or the ticket a local node wrote to the state directory.
func target(c *cli.Command) (identity.Ticket, error) { return targetOf(c, c.String("to")) }

// targetOf is target with to in place of --to (alknet ping TARGET).
func targetOf(c *cli.Command, to string) (identity.Ticket, error) {
	pin := c.String("pin")
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
	if strings.HasPrefix(to, identity.PrefixEd25519) { // a bare key: dial it over iroh, found through n0's lookup
		if err := identity.CheckFingerprint(to); err != nil {
			return identity.Ticket{}, usageErr("--to: %v", err)
		}
		if pin != "" && pin != to {
			return identity.Ticket{}, usageErr("--pin %s conflicts with --to %s", pin, to)
		}
		return identity.Ticket{Fingerprint: to, Iroh: &identity.IrohAddr{}}, nil
	}
	if _, _, err := net.SplitHostPort(to); err != nil {
		return identity.Ticket{}, usageErr("--to %q: want a ticket (alk1…), host:port or ed25519:<key>", to)
	}
	if pin == "" {
		return identity.Ticket{}, usageErr("--to host:port needs --pin <fingerprint>")
	}
	if err := identity.CheckFingerprint(pin); err != nil {
		return identity.Ticket{}, usageErr("--pin: %v", err)
	}
	if c.String("transport") == "iroh" { // one direct iroh address
		return identity.Ticket{Fingerprint: pin, Iroh: &identity.IrohAddr{Addrs: []string{to}}}, nil
	}
	return identity.Ticket{Fingerprint: pin, QUIC: []string{to}, TCP: []string{to}}, nil
}

func ticketFromStateDir(flag string) (identity.Ticket, error) {
	dir, err := stateDir(flag)
	if err != nil {
		return identity.Ticket{}, configErr(err)
	}
	data, err := readLimited(filepath.Join(dir, ticketFile), maxTicketFile)
	if err != nil {
		return identity.Ticket{}, connErr("NO_TARGET", fmt.Errorf("no --to and no node ticket in %s", dir))
	}
	tk, err := identity.ParseTicket(string(data))
	if err != nil {
		return identity.Ticket{}, configErr(fmt.Errorf("%s: %w", filepath.Join(dir, ticketFile), err))
	}
	return tk, nil
}

// session is a client connection running a call.Conn.
type session struct {
	conn      *call.Conn
	ticket    identity.Ticket
	verbose   *verbose
	closeIroh func() // the client's dial-only iroh endpoint, if it dialed over iroh
}

func (s *session) close() {
	_ = s.conn.Close()
	if s.closeIroh != nil {
		s.closeIroh()
	}
}

// dialSpec is what connect needs besides the target: which transport, which key and token.
type dialSpec struct {
	transport string // quic, tcp, iroh, auto
	keyFile   string
	tokenFile string
	timeout   time.Duration
	// streamPerCall: --stream-per-call (docs/protocol.md §4.1.2).
	streamPerCall bool
}

func specOf(c *cli.Command) dialSpec {
	return dialSpec{transport: c.String("transport"), keyFile: c.String("key-file"), tokenFile: c.String("token-file"), timeout: timeoutOf(c),
		streamPerCall: c.Bool("stream-per-call")}
}

// connect dials the target of c and starts a call.Conn on the connection.
func connect(ctx context.Context, e *env, c *cli.Command) (*session, error) {
	tk, err := target(c)
	if err != nil {
		return nil, err
	}
	return connectTicket(ctx, e, tk, specOf(c), newVerbose(e, c))
}

// connectTicket dials tk as spec says: --transport auto races QUIC and TCP+TLS.
func connectTicket(ctx context.Context, e *env, tk identity.Ticket, spec dialSpec, v *verbose) (*session, error) {
	o := callnode.DialOptions{Dialer: client.Dialer{Logger: e.log},
		Conn: call.ConnOptions{Logger: e.log, CallTimeout: spec.timeout, StreamPerCall: spec.streamPerCall}}
	switch spec.transport {
	case "quic":
		o.Transport = conn.TransportQUIC
	case "tcp":
		o.Transport = conn.TransportTCPTLS
	case "iroh":
		if !irohBuilt {
			return nil, configErr(iroh.ErrNotBuilt)
		}
		if tk.Iroh == nil {
			return nil, usageErr("--transport iroh: the ticket has no iroh address (serve --iroh puts one in)")
		}
		o.Transport = conn.TransportIroh
	case "auto", "":
		o.Race = &client.RaceOptions{Trace: v.race}
	default:
		return nil, usageErr("--transport %q: want quic, tcp, iroh or auto", spec.transport)
	}
	if spec.keyFile != "" {
		var err error
		if o.Key, err = identity.LoadKeyFile(spec.keyFile, e.log); err != nil {
			return nil, configErr(err)
		}
		v.printf("* client certificate %s (%s)", o.Key.Fingerprint(), spec.keyFile)
	}
	if spec.tokenFile != "" {
		tok, err := readSecretFile(spec.tokenFile, true)
		if err != nil {
			return nil, err
		}
		o.Conn.AuthToken = string(tok) // bearer tokens may be strings where an API needs one
		clear(tok)
		v.printf("* auth_token from %s", spec.tokenFile)
	}
	dialCtx, cancel := context.WithTimeout(ctx, spec.timeout)
	defer cancel()
	var closeIroh func()
	if o.Transport == conn.TransportIroh {
		d, closeFn, err := irohDialer(dialCtx, o.Key, tk, e.log)
		if err != nil {
			return nil, configErr(err)
		}
		o.Dialer.Iroh, closeIroh = d, closeFn
		v.printf("* iroh endpoint %s (dial-only)", d.Fingerprint())
	}
	v.printf("* dialing %s: quic %v, tcp %v (transport %s, budget %v)", tk.Fingerprint, tk.QUIC, tk.TCP, spec.transport, spec.timeout)
	start := time.Now()
	stopSpin := e.spin("connecting to " + shortFP(tk.Fingerprint) + "…")
	var cc *call.Conn
	var err error
	if o.Race != nil && tk.Iroh != nil {
		cc, closeIroh, err = dialAutoIroh(dialCtx, e, tk, o, v)
	} else {
		cc, err = callnode.DialTicket(dialCtx, tk, o)
	}
	stopSpin()
	if err != nil {
		v.printf("* dial failed after %v", time.Since(start).Round(time.Microsecond))
		if closeIroh != nil {
			closeIroh()
		}
		return nil, dialErr(err)
	}
	v.printf("* connected over %s to %s in %v; pin %s verified", cc.Connection().Transport(), cc.Connection().RemoteAddr(), time.Since(start).Round(time.Microsecond), tk.Fingerprint)
	return &session{conn: cc, ticket: tk, verbose: v, closeIroh: closeIroh}, nil
}

// dialErr maps a dial error to its exit code and CODE word.
func dialErr(err error) error {
	word := "UNREACHABLE"
	if client.IsKind(err, client.DialHandshake) {
		word = "TLS"
	}
	if isPinMismatch(err) {
		word = "PIN_MISMATCH"
	}
	if client.IsKind(err, client.DialConfig) || errors.Is(err, callnode.ErrNoAddress) {
		return configErr(err)
	}
	return connErr(word, err)
}

func shortFP(fp string) string {
	if len(fp) > 20 {
		return fp[:20]
	}
	return fp
}

// irohRaceDelay is how long --transport auto lets QUIC and TCP+TLS try before iroh joins the
// race (spec iroh.md §8.4), unless every QUIC/TCP address is one a remote client may well not
// reach (loopback, private, link-local): then iroh starts at once.
const irohRaceDelay = 500 * time.Millisecond

// dialAutoIroh races the ticket's QUIC/TCP addresses (as --transport auto does) against its
// iroh records; the first connection wins, the loser is closed with code 0. closeIroh ends the
// client's iroh endpoint when iroh won (nil otherwise: a losing endpoint is closed here).
func dialAutoIroh(ctx context.Context, e *env, tk identity.Ticket, o callnode.DialOptions, v *verbose) (cc *call.Conn, closeIroh func(), err error) {
	if !irohBuilt {
		v.printf("* iroh skipped: %v", iroh.ErrNotBuilt)
		tk.Iroh = nil
		cc, err = callnode.DialTicket(ctx, tk, o)
		return cc, nil, err
	}
	type result struct {
		cc      *call.Conn
		closeFn func()
		err     error
		iroh    bool
	}
	raceCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan result, 2)
	racers := 0
	if len(tk.QUIC)+len(tk.TCP) > 0 {
		racers++
		direct := tk
		direct.Iroh = nil
		go func() {
			c, err := callnode.DialTicket(raceCtx, direct, o)
			results <- result{cc: c, err: err}
		}()
	}
	delay := irohRaceDelay
	if onlyLocalAddrs(tk) {
		delay = 0
	}
	racers++
	go func() {
		select {
		case <-time.After(delay):
		case <-raceCtx.Done():
			results <- result{err: raceCtx.Err(), iroh: true}
			return
		}
		v.printf("* iroh joins the race after %v", delay)
		d, closeFn, err := irohDialer(raceCtx, o.Key, tk, e.log)
		if err != nil {
			results <- result{err: err, iroh: true}
			return
		}
		viaIroh := o
		viaIroh.Transport, viaIroh.Race, viaIroh.Dialer.Iroh = conn.TransportIroh, nil, d
		c, err := callnode.DialTicket(raceCtx, tk, viaIroh)
		if err != nil {
			go closeFn() // iroh's close of an endpoint whose dial failed can take seconds
			closeFn = nil
		}
		results <- result{cc: c, closeFn: closeFn, err: err, iroh: true}
	}()
	var firstErr error
	for range racers {
		r := <-results
		switch {
		case r.err == nil && cc == nil:
			cc, closeIroh = r.cc, r.closeFn
			v.printf("* race won by %s", cc.Connection().Transport())
			cancel()
		case r.err == nil: // a later winner: close it
			_ = r.cc.Close()
			if r.closeFn != nil {
				go r.closeFn()
			}
		case firstErr == nil || (!r.iroh && !errors.Is(r.err, context.Canceled)):
			firstErr = r.err // the QUIC/TCP error says most about an unreachable node
		}
	}
	if cc == nil {
		return nil, nil, firstErr
	}
	return cc, closeIroh, nil
}

// onlyLocalAddrs reports whether every QUIC/TCP address of tk is a loopback, private or
// link-local IP literal.
func onlyLocalAddrs(tk identity.Ticket) bool {
	addrs := append(append([]string{}, tk.QUIC...), tk.TCP...)
	for _, a := range addrs {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			return false
		}
		ip := ap.Addr().Unmap()
		if !ip.IsLoopback() && !ip.IsPrivate() && !ip.IsLinkLocalUnicast() {
			return false
		}
	}
	return true
}
