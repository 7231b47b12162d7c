// Package app is the alknet command line: the assembly layer that builds endpoints and talks
// to nodes. cmd/alknet only calls Main.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v3"
)

// Version is set at build time with -ldflags "-X .../app.Version=...".
var Version = "dev"

// env is what a command writes to.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	log            *slog.Logger
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	cmd := newCommand(e)
	err := cmd.Run(ctx, args)
	if err != nil {
		printError(e.stderr, err, wantsJSON(args))
	}
	return exitCode(err)
}

// wantsJSON reports whether --json was given: errors are then JSON too, even those found
// before a command runs (flag parsing), so it is read from the arguments themselves.
func wantsJSON(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--json" || a == "--json=true" {
			return true
		}
	}
	return false
}

// printError writes "error: CODE: message" (and a hint line) on stderr, or under --json
// {"error":{"code":…,"message":…,"hint":…}}.
func printError(w io.Writer, err error, asJSON bool) {
	var ee *exitError
	if !errors.As(err, &ee) {
		ee = &exitError{code: ExitUsage, word: "USAGE", err: err}
	}
	if ee.quiet {
		return
	}
	if asJSON {
		body := map[string]string{"code": ee.word, "message": ee.err.Error()}
		if ee.hint != "" {
			body["hint"] = ee.hint
		}
		out, _ := json.Marshal(map[string]any{"error": body})
		fmt.Fprintf(w, "%s\n", out)
		return
	}
	fmt.Fprintf(w, "error: %s\n", ee.Error())
	if ee.hint != "" {
		fmt.Fprintln(w, ee.hint)
	}
}

func newCommand(e *env) *cli.Command {
	root := &cli.Command{
		Name:  "alknet",
		Usage: "run and talk to alknet nodes",
		Description: "alknet is a secure node that lets machines call each other's operations by identity.\n" +
			"Start a development node with 'alknet serve --dev'; in another terminal,\n" +
			"'alknet call demo/echo '{\"text\":\"hi\"}'' reaches it through the ticket the node writes to its\n" +
			"state directory. 'alknet ls' lists what you may call; 'alknet status' shows the local node.\n" +
			"Shell completion: 'alknet completion bash' (or zsh, fish); every command has --help with\n" +
			"examples. The full reference is docs/cli.md.",
		EnableShellCompletion: true,
		HideVersion:           true, // --version is ours: the version command's output
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "state-dir", Usage: "state directory (default $ALKNET_STATE_DIR, $XDG_STATE_HOME/alknet or ~/.local/state/alknet)"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json (logs go to stderr)"},
			&cli.BoolFlag{Name: "version", Local: true, Usage: "print the version and exit"},
		},
		Before: func(ctx context.Context, c *cli.Command) (context.Context, error) {
			log, err := newLogger(e.stderr, c.String("log-level"), c.String("log-format"))
			if err != nil {
				return ctx, err
			}
			e.log = log
			return ctx, nil
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.Bool("version") {
				return printVersion(e, false)
			}
			return groupAction(ctx, c)
		},
		// Exit codes are Main's: urfave/cli must never exit the process itself.
		ExitErrHandler: func(context.Context, *cli.Command, error) {},
		Commands: []*cli.Command{initCommand(e), keyCommand(e), secretCommand(e), serveCommand(e), statusCommand(e),
			reloadCommand(e), peerCommand(e), apikeyCommand(e), callCommand(e), subCommand(e), lsCommand(e), openapiCommand(e), mcpCommand(e),
			schemaCommand(e), pingCommand(e), ticketCommand(e), versionCommand(e)},
	}
	setUsageHandling(root, "")
	return root
}

// groupAction runs for a command with subcommands when no subcommand matched: an unknown name
// is a usage error (exit 1), no name shows the help.
func groupAction(_ context.Context, c *cli.Command) error {
	if c.Args().Present() {
		return usageErr("unknown command %q", c.Args().First())
	}
	return cli.ShowSubcommandHelp(c)
}

// setUsageHandling makes every usage error one line plus a hint naming the command's --help,
// instead of the whole help text.
func setUsageHandling(c *cli.Command, parent string) {
	path := strings.TrimSpace(parent + " " + c.Name)
	hint := "run '" + path + " --help' for usage"
	c.OnUsageError = func(_ context.Context, _ *cli.Command, err error, _ bool) error {
		return &exitError{code: ExitUsage, word: "USAGE", err: err, hint: hint}
	}
	if c.Action == nil && len(c.Commands) > 0 {
		c.Action = groupAction
	}
	if action := c.Action; action != nil {
		c.Action = func(ctx context.Context, cmd *cli.Command) error {
			err := action(ctx, cmd)
			var ee *exitError
			if errors.As(err, &ee) && ee.word == "USAGE" && ee.hint == "" {
				ee.hint = hint
			}
			return err
		}
	}
	for _, sub := range c.Commands {
		setUsageHandling(sub, path)
	}
}
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErr("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErr("--log-format %q: want text or json", format)
}

func versionCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "version",
		Usage:     "print version, commit, Go version and module versions",
		UsageText: "alknet version\nalknet version --json\nalknet --version",
		Flags:     []cli.Flag{jsonFlag()},
		Action: func(_ context.Context, c *cli.Command) error {
			return printVersion(e, c.Bool("json"))
		},
	}
}

// versionInfo is what `alknet version` prints.
type versionInfo struct {
	Version string            `json:"version"`
	Go      string            `json:"go"`
	Commit  string            `json:"commit,omitempty"`
	Iroh    string            `json:"iroh"` // "iroh 1.0.3 abi 1", or "iroh none" without iroh
	Deps    map[string]string `json:"deps"`
}

func printVersion(e *env, asJSON bool) error {
	v := versionInfo{Version: Version, Go: runtime.Version(), Iroh: irohVersion(), Deps: map[string]string{}}
	var deps []string
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v.Commit = s.Value
			}
		}
		for _, d := range bi.Deps {
			v.Deps[d.Path] = d.Version
			deps = append(deps, d.Path+" "+d.Version)
		}
	}
	if asJSON {
		return writeJSON(e, v)
	}
	fmt.Fprintf(e.stdout, "alknet %s\ngo %s\n", v.Version, v.Go)
	if v.Commit != "" {
		fmt.Fprintf(e.stdout, "commit %s\n", v.Commit)
	}
	fmt.Fprintf(e.stdout, "%s\n", v.Iroh)
	for _, d := range deps {
		fmt.Fprintf(e.stdout, "dep %s\n", d)
	}
	return nil
}

// jsonFlag is --json, on every command that prints data.
func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "machine output: one JSON value on stdout (errors as JSON on stderr)"}
}

// writeJSON prints v as one compact JSON line.
func writeJSON(e *env, v any) error {
	out, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", out)
	return err
}
