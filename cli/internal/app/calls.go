package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
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
		Usage:     "call an operation once and print its output",
		ArgsUsage: "OP [INPUT]",
		UsageText: "alknet call demo/echo '{\"text\":\"hi\"}'\n" +
			"alknet call demo/add @numbers.json --to alk1…\n" +
			"echo '{}' | alknet call node/info -",
		Description: "INPUT is JSON text, @file or - (stdin); absent sends {}. The output is printed as JSON\n" +
			"(indented on a terminal, compact with --json). Exit codes: 0 ok, 1 usage, 2 connection,\n" +
			"3 NOT_FOUND, 4 FORBIDDEN, 5 INVALID_INPUT, 6 TIMEOUT, 7 other remote error.",
		Flags: clientFlags(),
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
			out, err := s.conn.Call(ctx, op, input)
			if err != nil {
				return remoteErr(err)
			}
			printJSON(e, out, c.Bool("json"))
			return nil
		},
	}
}

func opAndInput(e *env, c *cli.Command) (string, json.RawMessage, error) {
	args := c.Args().Slice()
	if len(args) < 1 || len(args) > 2 {
		return "", nil, usageErr("want OP [INPUT]; see --help")
	}
	in := ""
	if len(args) == 2 {
		in = args[1]
	}
	input, err := readInput(e, in)
	return args[0], input, err
}

func subCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "sub",
		Usage:     "subscribe to an operation and print each item as one JSON line",
		ArgsUsage: "OP [INPUT]",
		UsageText: "alknet sub demo/ticker\n" +
			"alknet sub demo/ticker '{\"count\":0,\"interval_ms\":500}'   # until Ctrl-C",
		Description: "Prints each output as one compact JSON line (NDJSON). Exits 0 when the subscription\n" +
			"completes; Ctrl-C sends call.aborted and exits 130. --timeout does not apply (subscriptions\n" +
			"have no deadline).",
		Flags: clientFlags(),
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
			sigCtx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			sub, err := s.conn.Subscribe(sigCtx, op, input)
			if err != nil {
				return remoteErr(err)
			}
			for {
				item, err := sub.Recv()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					if sigCtx.Err() != nil && ctx.Err() == nil {
						flush, cancel := context.WithTimeout(context.Background(), 2*time.Second)
						_ = s.conn.FlushAborts(flush)
						cancel()
						return &exitError{code: ExitInterrupted, word: "INTERRUPTED", err: errors.New("subscription aborted")}
					}
					return remoteErr(err)
				}
				printJSON(e, item, true)
			}
		},
	}
}

func lsCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "ls",
		Usage:     "list the operations the target node lets you call (services/list)",
		UsageText: "alknet ls\nalknet ls --json --to alk1…",
		Flags:     clientFlags(),
		Action: func(ctx context.Context, c *cli.Command) error {
			s, err := connect(ctx, e, c)
			if err != nil {
				return err
			}
			defer s.close()
			out, err := s.conn.Call(ctx, call.OpServicesList, json.RawMessage(`{}`))
			if err != nil {
				return remoteErr(err)
			}
			if c.Bool("json") {
				printJSON(e, out, true)
				return nil
			}
			var list struct {
				Operations []struct {
					Name   string `json:"name"`
					OpType string `json:"op_type"`
				} `json:"operations"`
			}
			if err := json.Unmarshal(out, &list); err != nil {
				return remoteErr(err)
			}
			sort.Slice(list.Operations, func(i, j int) bool { return list.Operations[i].Name < list.Operations[j].Name })
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "OPERATION\tTYPE")
			for _, op := range list.Operations {
				fmt.Fprintf(tw, "%s\t%s\n", op.Name, op.OpType)
			}
			return tw.Flush()
		},
	}
}

func schemaCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "schema",
		Usage:     "describe one operation (services/schema)",
		ArgsUsage: "OP",
		UsageText: "alknet schema demo/echo\nalknet schema demo/echo --json",
		Flags:     clientFlags(),
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.Args().Len() != 1 {
				return usageErr("want OP; see --help")
			}
			s, err := connect(ctx, e, c)
			if err != nil {
				return err
			}
			defer s.close()
			in, _ := json.Marshal(map[string]string{"name": c.Args().First()})
			out, err := s.conn.Call(ctx, call.OpServicesSchema, in)
			if err != nil {
				return remoteErr(err)
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
