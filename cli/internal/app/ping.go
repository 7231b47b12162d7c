package app

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/alkdev/alknet/call/builtin"
	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/identity"
)

// pingResult is one transport's line of `alknet ping`.
type pingResult struct {
	Transport string  `json:"transport"`
	Addr      string  `json:"addr"`
	ConnectMS float64 `json:"connect_ms,omitempty"`
	RTTMinMS  float64 `json:"rtt_min_ms,omitempty"`
	RTTAvgMS  float64 `json:"rtt_avg_ms,omitempty"`
	RTTMaxMS  float64 `json:"rtt_max_ms,omitempty"`
	Error     string  `json:"error,omitempty"`
	err       error
}

// raceResult is which transport `--transport auto` picked and when.
type raceResult struct {
	Winner string  `json:"winner,omitempty"`
	MS     float64 `json:"ms,omitempty"`
	Error  string  `json:"error,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func pingCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "ping",
		Usage:     "measure the connect time and round trip to a node over each transport, and which one auto picks",
		ArgsUsage: "[TARGET]",
		UsageText: "alknet ping                       # the local node\n" +
			"alknet ping alk1…                 # a ticket (or --to)\n" +
			"alknet ping --count 10 --json alk1…",
		Description: "Dials each transport of the target on its own (QUIC, then TCP+TLS), calls node/health --count\n" +
			"times on each, and reports the connect time and the round trips (min/avg/max); then runs the\n" +
			"race that --transport auto runs and says which transport won. Exits 0 when any transport\n" +
			"answers, else with the dial error's code.",
		Flags: append(clientFlags(true), &cli.IntFlag{Name: "count", Value: 3, Usage: "node/health calls per transport (1-1000)"}),
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.Args().Len() > 1 {
				return usageErr("want at most one TARGET")
			}
			to := c.String("to")
			if c.Args().Present() {
				if to != "" {
					return usageErr("give the target once: as TARGET or as --to")
				}
				to = c.Args().First()
			}
			tk, err := targetOf(c, to)
			if err != nil {
				return err
			}
			count := int(c.Int("count"))
			if count < 1 || count > 1000 {
				return usageErr("--count %d: want 1-1000", count)
			}
			spec := specOf(c)
			v := newVerbose(e, c)
			var results []pingResult
			for _, tr := range []struct {
				name, flag string
				addrs      []string
			}{{"quic", "quic", tk.QUIC}, {"tcp+tls", "tcp", tk.TCP}} {
				if len(tr.addrs) == 0 || (spec.transport != "auto" && spec.transport != tr.flag) {
					continue
				}
				one := identity.Ticket{Fingerprint: tk.Fingerprint, ServerName: tk.ServerName}
				if tr.flag == "quic" {
					one.QUIC = tr.addrs[:1]
				} else {
					one.TCP = tr.addrs[:1]
				}
				s := spec
				s.transport = tr.flag
				results = append(results, pingOne(ctx, e, one, s, v, tr.name, tr.addrs[0], count))
			}
			if len(results) == 0 {
				return configErr(fmt.Errorf("the ticket has no %s address", spec.transport))
			}
			var race *raceResult
			if spec.transport == "auto" && len(tk.QUIC) > 0 && len(tk.TCP) > 0 {
				race = pingRace(ctx, e, tk, spec, v)
			}
			if c.Bool("json") {
				if err := writeJSON(e, map[string]any{"fingerprint": tk.Fingerprint, "transports": results, "race": race}); err != nil {
					return err
				}
			} else {
				printPing(e, tk, results, race)
			}
			for _, r := range results {
				if r.err == nil {
					return nil
				}
			}
			err = results[0].err
			if ee, ok := err.(*exitError); ok {
				ee.quiet = true // the table (or JSON) above says it
			}
			return err
		},
	}
}

// pingOne dials one transport alone and times node/health count times.
func pingOne(ctx context.Context, e *env, tk identity.Ticket, spec dialSpec, v *verbose, name, addr string, count int) pingResult {
	r := pingResult{Transport: name, Addr: addr}
	start := time.Now()
	s, err := connectTicket(ctx, e, tk, spec, v)
	if err != nil {
		r.err, r.Error = err, err.Error()
		return r
	}
	defer s.close()
	r.ConnectMS = ms(time.Since(start))
	var rtts []time.Duration
	for range count {
		t0 := time.Now()
		if _, err := s.conn.Call(ctx, builtin.Health, json.RawMessage(`{}`)); err != nil {
			r.err = remoteErr(err)
			r.Error = r.err.Error()
			return r
		}
		rtts = append(rtts, time.Since(t0))
		v.printf("* %s node/health %v", name, rtts[len(rtts)-1])
	}
	var sum time.Duration
	for _, d := range rtts {
		sum += d
	}
	r.RTTMinMS, r.RTTMaxMS = ms(slices.Min(rtts)), ms(slices.Max(rtts))
	r.RTTAvgMS = ms(sum / time.Duration(len(rtts)))
	return r
}

// pingRace runs the race of --transport auto and reports its winner.
func pingRace(ctx context.Context, e *env, tk identity.Ticket, spec dialSpec, v *verbose) *raceResult {
	var mu sync.Mutex
	var winner client.RaceEvent
	trace := &verbose{onRace: func(ev client.RaceEvent) {
		if ev.Phase == client.AttemptWon {
			mu.Lock()
			winner = ev
			mu.Unlock()
		}
	}}
	if v != nil {
		trace.w = v.w
	}
	s, err := connectTicket(ctx, e, tk, spec, trace)
	if err != nil {
		return &raceResult{Error: err.Error()}
	}
	s.close()
	mu.Lock()
	defer mu.Unlock()
	return &raceResult{Winner: string(winner.Transport), MS: ms(winner.Elapsed)}
}

func printPing(e *env, tk identity.Ticket, results []pingResult, race *raceResult) {
	fmt.Fprintf(e.stdout, "ping %s\n", tk.Fingerprint)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TRANSPORT\tADDRESS\tCONNECT\tRTT MIN/AVG/MAX")
	for _, r := range results {
		if r.err != nil {
			fmt.Fprintf(tw, "%s\t%s\tfailed\t%s\n", r.Transport, r.Addr, r.Error)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%.3fms\t%.3f/%.3f/%.3fms\n", r.Transport, r.Addr, r.ConnectMS, r.RTTMinMS, r.RTTAvgMS, r.RTTMaxMS)
	}
	_ = tw.Flush()
	switch {
	case race == nil:
	case race.Error != "":
		fmt.Fprintf(e.stdout, "auto: failed: %s\n", race.Error)
	default:
		fmt.Fprintf(e.stdout, "auto: %s won the race in %.3fms\n", race.Winner, race.MS)
	}
}
