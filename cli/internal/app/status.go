package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core/identity"
)

// localNode is the node of a state directory as its files describe it.
type localNode struct {
	dir     string
	pid     int    // 0: no node.pid
	stale   bool   // node.pid names no live process
	keyFile string // the running node's local admin key
}

func findLocalNode(c *cli.Command) (localNode, error) {
	dir, err := stateDir(c.Root().String("state-dir"))
	if err != nil {
		return localNode{}, configErr(err)
	}
	ln := localNode{dir: dir, keyFile: filepath.Join(dir, adminKeyFile)}
	data, err := readLimited(filepath.Join(dir, pidFile), 64)
	if err != nil {
		return ln, nil
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return ln, configErr(fmt.Errorf("%s: not a PID", filepath.Join(dir, pidFile)))
	}
	ln.pid = pid
	// Signal 0 checks that the process exists; EPERM means it does, owned by someone else.
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		ln.stale = true
	}
	return ln, nil
}

func (ln localNode) running() bool { return ln.pid > 0 && !ln.stale }

// notRunning is the error of a command that needs the local node when none runs.
func (ln localNode) notRunning() error {
	if ln.stale {
		return connErr("NO_TARGET", fmt.Errorf("no running node in %s (node.pid names process %d, which has exited)", ln.dir, ln.pid))
	}
	return connErr("NO_TARGET", fmt.Errorf("no running node in %s (no %s)", ln.dir, pidFile))
}

// adminSession dials the local node with its local admin key (the node writes both the
// ticket and the key to the state directory; only its owner can read the key).
func adminSession(ctx context.Context, e *env, c *cli.Command, ln localNode) (*session, error) {
	tk, err := ticketFromStateDir(c.Root().String("state-dir"))
	if err != nil {
		return nil, err
	}
	spec := specOf(c)
	if spec.keyFile == "" {
		spec.keyFile = ln.keyFile
	}
	return connectTicket(ctx, e, tk, spec, newVerbose(e, c))
}

// nodeSession dials --to, or else the node of the state directory with its local admin key.
// With no --to and no running node it returns a nil session and the local node's state.
func nodeSession(ctx context.Context, e *env, c *cli.Command) (*session, localNode, error) {
	if c.String("to") != "" {
		s, err := connect(ctx, e, c)
		return s, localNode{}, err
	}
	ln, err := findLocalNode(c)
	if err != nil || !ln.running() {
		return nil, ln, err
	}
	s, err := adminSession(ctx, e, c, ln)
	return s, ln, err
}

func statusCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show whether the local node runs, and its listeners, connections, calls and last reload",
		UsageText: "alknet status\n" +
			"alknet status --json\n" +
			"alknet status --to alk1… --key-file admin.key   # another node (details need the admin scope)",
		Description: "Without --to, reads <state dir>/node.pid and asks the node (node/status) with the local admin\n" +
			"key it wrote to the state directory. Exits 0 when the node runs and answers, 2 when no node\n" +
			"runs (status stopped) or it does not answer. Without the admin scope a node shows only its\n" +
			"status, fingerprint, version and uptime.",
		Flags: clientFlags(true),
		Action: func(ctx context.Context, c *cli.Command) error {
			s, ln, err := nodeSession(ctx, e, c)
			if err != nil {
				return err
			}
			if s == nil {
				printStopped(e, c.Bool("json"), ln)
				return &exitError{code: ExitConnection, word: "NO_TARGET", err: errors.New("the node is not running"), quiet: true}
			}
			defer s.close()
			out, err := s.conn.Call(ctx, OpStatus, json.RawMessage(`{}`))
			if err != nil {
				return remoteErr(err)
			}
			if c.Bool("json") {
				printJSON(e, out, true)
				return nil
			}
			return printStatus(e, out, s)
		},
	}
}

func printStopped(e *env, asJSON bool, ln localNode) {
	if asJSON {
		_ = writeJSON(e, map[string]any{"status": "stopped", "state_dir": ln.dir, "stale_pid": ln.stale})
		return
	}
	fmt.Fprintf(e.stdout, "status     stopped\nstate_dir  %s\n", ln.dir)
	if ln.stale {
		fmt.Fprintf(e.stdout, "note       node.pid names process %d, which has exited (the node did not stop cleanly)\n", ln.pid)
	}
}

func printStatus(e *env, raw json.RawMessage, s *session) error {
	var st struct {
		nodeStatus
		statusDetails
		PID *int `json:"pid"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return remoteErr(err)
	}
	state := st.Status
	if state == "ok" {
		state = "running"
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "status\t%s\n", state)
	fmt.Fprintf(tw, "fingerprint\t%s\n", st.Fingerprint)
	fmt.Fprintf(tw, "version\t%s\n", st.Version)
	fmt.Fprintf(tw, "uptime\t%v\n", (time.Duration(st.UptimeMS) * time.Millisecond).Round(time.Second))
	fmt.Fprintf(tw, "reached\tover %s\n", s.conn.Connection().Transport())
	if st.PID == nil {
		fmt.Fprintf(tw, "details\tneed the admin scope (--key-file with an admin peer's key)\n")
		return tw.Flush()
	}
	fmt.Fprintf(tw, "pid\t%d\n", *st.PID)
	for _, a := range st.Listeners.QUIC {
		fmt.Fprintf(tw, "quic\t%s\n", a)
	}
	for _, a := range st.Listeners.TCP {
		fmt.Fprintf(tw, "tcp\t%s\n", a)
	}
	for _, u := range st.Listeners.HTTP {
		fmt.Fprintf(tw, "http\t%s\n", u)
	}
	if st.Listeners.MCP && len(st.Listeners.HTTP) > 0 {
		fmt.Fprintf(tw, "mcp\t%s/mcp\n", st.Listeners.HTTP[len(st.Listeners.HTTP)-1])
	}
	fmt.Fprintf(tw, "connections\t%d%s\n", st.Connections, countsSuffix(st.ConnectionsByTransport))
	fmt.Fprintf(tw, "in_flight\t%d\n", st.InFlight)
	switch {
	case st.Dev:
		fmt.Fprintf(tw, "config\tnone (a --dev node)\n")
	case st.Config != "":
		fmt.Fprintf(tw, "config\t%s\n", st.Config)
	}
	fmt.Fprintf(tw, "state_dir\t%s\n", st.StateDir)
	fmt.Fprintf(tw, "last_reload\t%s\n", describeReload(st.LastReload))
	return tw.Flush()
}

func countsSuffix(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func describeReload(r *reloadResult) string {
	if r == nil {
		return "none since start"
	}
	at := r.At.Local().Format(time.RFC3339)
	if !r.OK {
		return "rejected at " + at + ": " + r.Error
	}
	out := "applied at " + at
	if len(r.Changed) > 0 {
		out += "; changed: " + strings.Join(r.Changed, ", ")
	}
	if len(r.RestartRequired) > 0 {
		out += "; needs a restart: " + strings.Join(r.RestartRequired, ", ")
	}
	return out
}

func reloadCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "reload",
		Usage: "make a running node re-read its config and report the outcome (node/reload)",
		UsageText: "alknet reload                                 # the node of this state directory\n" +
			"alknet reload --to alk1… --key-file admin.key  # a remote node (needs the admin scope)",
		Description: "Calls node/reload: locally with the admin key the node wrote to the state directory, remotely\n" +
			"with --key-file or --token-file of an admin. Prints what changed; exits 5 (INVALID_INPUT) with\n" +
			"the node's reason when it rejects the config (the old config stays in force). Changes to\n" +
			"sections that need a restart are applied at the next start and listed under restart_required.",
		Flags: clientFlags(true),
		Action: func(ctx context.Context, c *cli.Command) error {
			s, ln, err := nodeSession(ctx, e, c)
			if err != nil {
				return err
			}
			if s == nil {
				return ln.notRunning()
			}
			defer s.close()
			out, err := s.conn.Call(ctx, OpReload, json.RawMessage(`{}`))
			if errors.Is(err, call.ErrNotFound) {
				return usageErr("the node has no config to reload (a --dev node, or one without node/reload)")
			}
			if err != nil {
				return remoteErr(err)
			}
			if c.Bool("json") {
				printJSON(e, out, true)
				return nil
			}
			var r reloadResult
			if err := json.Unmarshal(out, &r); err != nil {
				return remoteErr(err)
			}
			r.OK = true
			fmt.Fprintln(e.stdout, "reloaded")
			for _, ch := range r.Changed {
				fmt.Fprintf(e.stdout, "changed %s\n", ch)
			}
			for _, ch := range r.RestartRequired {
				fmt.Fprintf(e.stdout, "restart_required %s\n", ch)
			}
			if len(r.RestartRequired) > 0 {
				fmt.Fprintln(e.stderr, "note: the sections listed as restart_required take effect at the next start")
			}
			return nil
		},
	}
}

func ticketCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "ticket",
		Usage: "work with tickets",
		Commands: []*cli.Command{{
			Name:      "inspect",
			Usage:     "decode a ticket: fingerprint, addresses and every record",
			ArgsUsage: "[TICKET]",
			UsageText: "alknet ticket inspect alk1…\nalknet ticket inspect            # the local node's ticket\nalknet ticket inspect --json alk1…",
			Flags:     []cli.Flag{jsonFlag()},
			Action: func(_ context.Context, c *cli.Command) error {
				if c.Args().Len() > 1 {
					return usageErr("want at most one TICKET")
				}
				s := c.Args().First()
				if s == "" {
					tk, err := ticketFromStateDir(c.Root().String("state-dir"))
					if err != nil {
						return err
					}
					if s, err = tk.Encode(); err != nil {
						return configErr(err)
					}
				}
				tk, err := identity.ParseTicket(s)
				if err != nil {
					return usageErr("%v", err)
				}
				recs, _ := identity.TicketRecords(s)
				if c.Bool("json") {
					return writeJSON(e, map[string]any{"fingerprint": tk.Fingerprint, "quic": nonNil(tk.QUIC), "tcp": nonNil(tk.TCP),
						"server_name": tk.ServerName, "records": recs})
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "fingerprint\t%s\n", tk.Fingerprint)
				for _, a := range tk.QUIC {
					fmt.Fprintf(tw, "quic\t%s\n", a)
				}
				for _, a := range tk.TCP {
					fmt.Fprintf(tw, "tcp\t%s\n", a)
				}
				if tk.ServerName != "" {
					fmt.Fprintf(tw, "server_name\t%s\n", tk.ServerName)
				}
				if tk.Iroh != nil {
					for _, a := range tk.Iroh.Addrs {
						fmt.Fprintf(tw, "iroh\t%s\n", a)
					}
					if tk.Iroh.RelayURL != "" {
						fmt.Fprintf(tw, "iroh_relay\t%s\n", tk.Iroh.RelayURL)
					}
				}
				switch {
				case len(tk.QUIC)+len(tk.TCP) == 0 && tk.Iroh == nil:
					fmt.Fprintf(tw, "note\tno address: a client cannot dial this ticket\n")
				case len(tk.QUIC)+len(tk.TCP) == 0:
					fmt.Fprintf(tw, "note\tiroh only: dial it with --transport iroh\n")
				}
				for i, r := range recs {
					fmt.Fprintf(tw, "record %d\t0x%02x %s %s\n", i, r.Type, r.Name, r.Value)
				}
				return tw.Flush()
			},
		}},
	}
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}
