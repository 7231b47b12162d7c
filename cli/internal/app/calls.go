package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/alkdev/alknet/call"
)

const maxInputFile = 64 << 20

// readInput turns the INPUT argument into JSON: text, @file or - (stdin); absent → {}.
func readInput(e *env, arg string) (json.RawMessage, error) {
	var data []byte
	var err error
	switch {
	case arg == "":
		return json.RawMessage(`{}`), nil
	case arg == "-":
		data, err = io.ReadAll(io.LimitReader(e.stdin, maxInputFile+1))
	case strings.HasPrefix(arg, "@"):
		var f *os.File
		if f, err = os.Open(arg[1:]); err == nil {
			data, err = io.ReadAll(io.LimitReader(f, maxInputFile+1))
			f.Close()
		}
	default:
		data = []byte(arg)
	}
	if err != nil {
		return nil, usageErr("input: %v", err)
	}
	if len(data) > maxInputFile {
		return nil, usageErr("input: larger than %d bytes", maxInputFile)
	}
	data = bytes.TrimSpace(data)
	if !json.Valid(data) {
		return nil, usageErr("input is not valid JSON: %.80q", data)
	}
	return data, nil
}

// isTTY reports whether w is a terminal.
func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// printJSON prints v indented on a TTY, compact with --json or when piped.
func printJSON(e *env, raw json.RawMessage, compact bool) {
	var buf bytes.Buffer
	if !compact && isTTY(e.stdout) {
		_ = json.Indent(&buf, raw, "", "  ")
	} else if json.Compact(&buf, raw) != nil {
		buf.Write(raw)
	}
	buf.WriteByte('\n')
	_, _ = e.stdout.Write(buf.Bytes())
}

func callCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "call",
		Usage:     "call a query or mutation once and print its output",
		ArgsUsage: "OP [INPUT]",
		UsageText: "alknet call demo/echo '{\"text\":\"hi\"}'\n" +
			"alknet call demo/add @numbers.json --to alk1…\n" +
			"echo '{}' | alknet call node/info -\n" +
			"alknet call -v node/health          # show the dial, the request and the events",
		Description: "INPUT is JSON text, @file or - (stdin); absent sends {}. The output is printed as JSON\n" +
			"(indented on a terminal, compact with --json). The operation's type is checked first\n" +
			"(services/schema): a subscription is refused with a pointer to 'alknet sub'. Exit codes:\n" +
			"0 ok, 1 usage, 2 connection, 3 NOT_FOUND, 4 FORBIDDEN, 5 INVALID_INPUT, 6 TIMEOUT, 7 other\n" +
			"remote error.",
		Flags:         clientFlags(true),
		ShellComplete: completeOperation(e),
		Action: func(ctx context.Context, c *cli.Command) error {
			op, input, err := opAndInput(e, c)
			if err != nil {
				return err
			}
			s, err := connect(ctx, e, c)
			if err != nil {
				return err
			}
			defer s.close()
			if err := checkOpType(ctx, s, op, false); err != nil {
				return err
			}
			id := newRequestID()
			s.verbose.printf("> call.requested id=%s operation_id=%s input=%s", id, op, input)
			start := time.Now()
			out, err := s.conn.Call(ctx, op, input, call.WithRequestID(id))
			if err != nil {
				s.verbose.event("call.error", id, errorPayload(err), start)
				return withSuggestion(ctx, s, op, remoteErr(err))
			}
			s.verbose.event("call.responded", id, out, start)
			printJSON(e, out, c.Bool("json"))
			return nil
		},
	}
}

func opAndInput(e *env, c *cli.Command) (string, json.RawMessage, error) {
	args := c.Args().Slice()
	if len(args) < 1 || len(args) > 2 {
		return "", nil, usageErr("want OP [INPUT]")
	}
	in := ""
	if len(args) == 2 {
		in = args[1]
	}
	input, err := readInput(e, in)
	return args[0], input, err
}

// newRequestID is a fresh request id, made here so -v can show it before the request is sent.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // UUID v4
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// errorPayload renders a call error as the call.error payload it came from (for -v).
func errorPayload(err error) json.RawMessage {
	var ce *call.Error
	if !errors.As(err, &ce) {
		out, _ := json.Marshal(map[string]string{"error": err.Error()})
		return out
	}
	out, _ := json.Marshal(map[string]any{"code": ce.Code(), "message": ce.Message(), "retryable": ce.Retryable()})
	return out
}

// checkOpType asks the catalogue for op's type and refuses the wrong command with a usage
// error; an operation the catalogue does not show is left to the call (which says NOT_FOUND).
func checkOpType(ctx context.Context, s *session, op string, wantSub bool) error {
	in, _ := json.Marshal(map[string]string{"name": op})
	out, err := s.conn.Call(ctx, call.OpServicesSchema, in)
	if err != nil {
		s.verbose.printf("* type check skipped: services/schema: %v", err)
		return nil
	}
	var spec struct {
		OpType string `json:"op_type"`
	}
	if json.Unmarshal(out, &spec) != nil {
		return nil
	}
	s.verbose.printf("* %s is a %s (services/schema)", op, spec.OpType)
	isSub := spec.OpType == string(call.OpSubscription)
	switch {
	case isSub && !wantSub:
		return usageErr("%s is a subscription: use alknet sub", op)
	case !isSub && wantSub && spec.OpType != "":
		return usageErr("%s is a %s: use alknet call", op, spec.OpType)
	}
	return nil
}

// withSuggestion adds "did you mean …" to a NOT_FOUND error, from the visible catalogue.
func withSuggestion(ctx context.Context, s *session, op string, err error) error {
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != ExitNotFound {
		return err
	}
	ops, lerr := listOperations(ctx, s)
	if lerr != nil {
		return err
	}
	if near := suggest(op, opNames(ops)); len(near) > 0 {
		ee.hint = "did you mean " + strings.Join(near, " or ") + "? ('alknet ls' lists what you may call)"
	}
	return err
}

// listedOp is one entry of services/list.
type listedOp struct {
	Name        string   `json:"name"`
	Namespace   string   `json:"namespace,omitempty"`
	OpType      string   `json:"op_type"`
	Via         []string `json:"via,omitempty"`
	Description *string  `json:"description,omitempty"`
}

// listOperations reads every page of services/list (a long catalogue comes in pages).
// opNames returns the operations' names, in order.
func opNames(ops []listedOp) []string {
	names := make([]string, len(ops))
	for i, o := range ops {
		names[i] = o.Name
	}
	return names
}

func listOperations(ctx context.Context, s *session) ([]listedOp, error) {
	var all []listedOp
	after := ""
	for range 10000 { // a bound: a peer cannot keep us paging forever
		in := json.RawMessage(`{}`)
		if after != "" {
			in, _ = json.Marshal(map[string]string{"after": after})
		}
		out, err := s.conn.Call(ctx, call.OpServicesList, in)
		if err != nil {
			return nil, err
		}
		var page struct {
			Operations []listedOp `json:"operations"`
			Next       string     `json:"next"`
		}
		if err := json.Unmarshal(out, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Operations...)
		if page.Next == "" || page.Next <= after {
			break
		}
		after = page.Next
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	return all, nil
}

func subCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "sub",
		Usage:     "subscribe to an operation and print each item as one JSON line",
		ArgsUsage: "OP [INPUT]",
		UsageText: "alknet sub demo/ticker\n" +
			"alknet sub demo/ticker '{\"count\":0,\"interval_ms\":500}'   # until Ctrl-C",
		Description: "Prints each output as one compact JSON line (NDJSON). Exits 0 when the subscription\n" +
			"completes; Ctrl-C sends call.aborted and exits 130. A subscription has no deadline; dialing\n" +
			"gets 30s. A query or mutation is refused with a pointer to 'alknet call'.",
		Flags:         clientFlags(false),
		ShellComplete: completeOperation(e),
		Action: func(ctx context.Context, c *cli.Command) error {
			op, input, err := opAndInput(e, c)
			if err != nil {
				return err
			}
			s, err := connect(ctx, e, c)
			if err != nil {
				return err
			}
			defer s.close()
			if err := checkOpType(ctx, s, op, true); err != nil {
				return err
			}
			sigCtx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			id := newRequestID()
			s.verbose.printf("> call.requested id=%s operation_id=%s input=%s", id, op, input)
			start := time.Now()
			sub, err := s.conn.Subscribe(sigCtx, op, input, call.WithRequestID(id))
			if err != nil {
				return withSuggestion(ctx, s, op, remoteErr(err))
			}
			for {
				item, err := sub.Recv()
				if err == io.EOF {
					s.verbose.event("call.completed", id, json.RawMessage(`{}`), start)
					return nil
				}
				if err != nil {
					if sigCtx.Err() != nil && ctx.Err() == nil {
						s.verbose.printf("> call.aborted id=%s", id)
						flush, cancel := context.WithTimeout(context.Background(), 2*time.Second)
						_ = s.conn.FlushAborts(flush)
						cancel()
						return &exitError{code: ExitInterrupted, word: "INTERRUPTED", err: errors.New("subscription aborted")}
					}
					s.verbose.event("call.error", id, errorPayload(err), start)
					return withSuggestion(ctx, s, op, remoteErr(err))
				}
				s.verbose.event("call.responded", id, item, start)
				printJSON(e, item, true)
			}
		},
	}
}

func lsCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "ls",
		Usage:     "list the operations the target node lets you call (services/list)",
		ArgsUsage: "[PREFIX]",
		UsageText: "alknet ls\nalknet ls demo/               # only names starting with demo/\nalknet ls --json --to alk1…\n" +
			"alknet ls --peers --to alk1… --key-file admin.key   # a hub's peers and their operations",
		Description: "Prints OPERATION, TYPE and DESCRIPTION for every operation visible to you, sorted by\n" +
			"name, and VIA (the node behind an imported operation) when any has one; PREFIX keeps the\n" +
			"names that start with it. --json prints the services/list output (filtered by PREFIX when\n" +
			"one is given; a paged catalogue is joined). --peers prints services/list-peers as PEER,\n" +
			"OPERATION and TYPE.",
		Flags: append(clientFlags(true), &cli.BoolFlag{Name: "peers", Usage: "list this node's and each attached peer's operations (services/list-peers; admin scope)"}),
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.Args().Len() > 1 {
				return usageErr("want at most one PREFIX")
			}
			prefix := c.Args().First()
			s, err := connect(ctx, e, c)
			if err != nil {
				return err
			}
			defer s.close()
			if c.Bool("peers") {
				out, err := s.conn.Call(ctx, call.OpServicesListPeers, json.RawMessage(`{}`))
				if err != nil {
					return remoteErr(err)
				}
				if c.Bool("json") {
					printJSON(e, out, true)
					return nil
				}
				return printPeers(e, out, prefix)
			}
			if c.Bool("json") && prefix == "" {
				out, err := s.conn.Call(ctx, call.OpServicesList, json.RawMessage(`{}`))
				if err != nil {
					return remoteErr(err)
				}
				if !strings.Contains(string(out), `"next":`) { // one page: the output unchanged
					printJSON(e, out, true)
					return nil
				}
			}
			ops, err := listOperations(ctx, s)
			if err != nil {
				return remoteErr(err)
			}
			kept := ops[:0]
			for _, op := range ops {
				if strings.HasPrefix(op.Name, prefix) {
					kept = append(kept, op)
				}
			}
			if c.Bool("json") {
				return writeJSON(e, map[string][]listedOp{"operations": kept})
			}
			withVia := slices.ContainsFunc(kept, func(o listedOp) bool { return len(o.Via) > 0 })
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			if withVia {
				fmt.Fprintln(tw, "OPERATION\tTYPE\tVIA\tDESCRIPTION")
			} else {
				fmt.Fprintln(tw, "OPERATION\tTYPE\tDESCRIPTION")
			}
			for _, op := range kept {
				desc := ""
				if op.Description != nil {
					desc = firstLine(*op.Description, 80)
				}
				if withVia {
					via := ""
					if len(op.Via) > 0 {
						via = firstLine(op.Via[0], 25)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", op.Name, op.OpType, via, desc)
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", op.Name, op.OpType, desc)
			}
			return tw.Flush()
		},
	}
}

// printPeers prints services/list-peers as PEER OPERATION TYPE.
func printPeers(e *env, raw json.RawMessage, prefix string) error {
	var out struct {
		Peers []struct {
			PeerID     string     `json:"peer_id"`
			Operations []listedOp `json:"operations"`
		} `json:"peers"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return remoteErr(err)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tOPERATION\tTYPE")
	for _, p := range out.Peers {
		for _, op := range p.Operations {
			if strings.HasPrefix(op.Name, prefix) {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", p.PeerID, op.Name, op.OpType)
			}
		}
	}
	return tw.Flush()
}

// firstLine is s up to its first newline, cut to max runes.
func firstLine(s string, max int) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

func schemaCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:          "schema",
		Usage:         "describe one operation (services/schema)",
		ArgsUsage:     "OP",
		UsageText:     "alknet schema demo/echo\nalknet schema demo/echo --json",
		Flags:         clientFlags(true),
		ShellComplete: completeOperation(e),
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.Args().Len() != 1 {
				return usageErr("want OP")
			}
			s, err := connect(ctx, e, c)
			if err != nil {
				return err
			}
			defer s.close()
			in, _ := json.Marshal(map[string]string{"name": c.Args().First()})
			out, err := s.conn.Call(ctx, call.OpServicesSchema, in)
			if err != nil {
				return withSuggestion(ctx, s, c.Args().First(), remoteErr(err))
			}
			if c.Bool("json") {
				printJSON(e, out, true)
				return nil
			}
			return printSchema(e, out)
		},
	}
}

func printSchema(e *env, raw json.RawMessage) error {
	var s struct {
		Name         string          `json:"name"`
		OpType       string          `json:"op_type"`
		Description  *string         `json:"description"`
		InputSchema  json.RawMessage `json:"input_schema"`
		OutputSchema json.RawMessage `json:"output_schema"`
		ErrorSchemas []struct {
			Code        string `json:"code"`
			Description string `json:"description"`
		} `json:"error_schemas"`
		AccessControl struct {
			RequiredScopes    []string `json:"required_scopes"`
			RequiredScopesAny []string `json:"required_scopes_any"`
			ResourceType      *string  `json:"resource_type"`
			ResourceAction    *string  `json:"resource_action"`
		} `json:"access_control"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return remoteErr(err)
	}
	indent := func(r json.RawMessage) string {
		var b bytes.Buffer
		if json.Indent(&b, r, "  ", "  ") != nil {
			return string(r)
		}
		return b.String()
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "name\t%s\n", s.Name)
	fmt.Fprintf(tw, "type\t%s\n", s.OpType)
	if s.Description != nil {
		fmt.Fprintf(tw, "description\t%s\n", *s.Description)
	}
	access := "anyone"
	var parts []string
	if len(s.AccessControl.RequiredScopes) > 0 {
		parts = append(parts, "scopes "+strings.Join(s.AccessControl.RequiredScopes, ", "))
	}
	if s.AccessControl.RequiredScopesAny != nil {
		parts = append(parts, "any of "+strings.Join(s.AccessControl.RequiredScopesAny, ", "))
	}
	if s.AccessControl.ResourceType != nil {
		parts = append(parts, "resource "+*s.AccessControl.ResourceType)
	}
	if s.AccessControl.ResourceAction != nil {
		parts = append(parts, "action "+*s.AccessControl.ResourceAction)
	}
	if len(parts) > 0 {
		access = strings.Join(parts, "; ")
	}
	fmt.Fprintf(tw, "access\t%s\n", access)
	for _, d := range s.ErrorSchemas {
		fmt.Fprintf(tw, "error\t%s: %s\n", d.Code, d.Description)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "input:\n  %s\noutput:\n  %s\n", indent(s.InputSchema), indent(s.OutputSchema))
	return nil
}
