package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/alkdev/alknet/cli/internal/devping"
	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/core/tlsconf"
)

const maxTicketFile = 4096

func pingCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "ping",
		Usage: "check that a node answers (alknet/ping)",
		UsageText: "alknet ping                       # the node whose ticket is in the state directory\n" +
			"alknet ping --to alk1...          # a node by ticket\n" +
			"alknet ping --transport tcp       # force TCP+TLS",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "to", Usage: "ticket of the target node (default: <state dir>/node.ticket)"},
			&cli.StringFlag{Name: "transport", Value: "auto", Usage: "quic, tcp or auto (QUIC, then TCP+TLS)"},
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second, Usage: "overall time limit"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			tk, err := target(c.String("to"), c.Root().String("state-dir"))
			if err != nil {
				return err
			}
			switch c.String("transport") {
			case "quic":
				tk.TCP = nil
			case "tcp":
				tk.QUIC = nil
			case "auto":
			default:
				return usageErr("--transport %q: want quic, tcp or auto", c.String("transport"))
			}
			ctx, cancel := context.WithTimeout(ctx, c.Duration("timeout"))
			defer cancel()
			start := time.Now()
			cn, err := client.DialTicket(ctx, &client.Dialer{Logger: e.log}, tk, devping.ALPN, tlsconf.ConnectionCredentials{})
			if err != nil {
				return connErr(dialWord(err), err)
			}
			defer cn.Close(conn.CodeNormal, "")
			if err := devping.Ping(ctx, cn); err != nil {
				return connErr("PING", err)
			}
			fmt.Fprintf(e.stdout, "pong from %s over %s in %v\n", cn.RemoteFingerprint(), cn.Transport(), time.Since(start).Round(time.Microsecond))
			return nil
		},
	}
}

func dialWord(err error) string {
	if errors.Is(err, tlsconf.ErrPinMismatch) {
		return "PIN_MISMATCH"
	}
	return "UNREACHABLE"
}

// target parses --to, or the ticket a local node wrote to the state directory.
func target(to, stateFlag string) (identity.Ticket, error) {
	if to != "" {
		tk, err := identity.ParseTicket(to)
		if err != nil {
			return identity.Ticket{}, usageErr("--to: %v", err)
		}
		return tk, nil
	}
	dir, err := stateDir(stateFlag)
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
