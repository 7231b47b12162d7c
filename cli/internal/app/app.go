// Package app is the alknet command line: the assembly layer that builds endpoints and talks
// to nodes. cmd/alknet only calls Main.
package app

import (
	"context"
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
		var msg string
		if ee, ok := err.(*exitError); ok {
			msg = ee.Error()
		} else {
			msg = "USAGE: " + err.Error()
		}
		fmt.Fprintf(stderr, "error: %s\n", msg)
	}
	return exitCode(err)
}

func newCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "alknet",
		Usage: "run and talk to alknet nodes",
		Description: "alknet is a secure node that lets machines call each other's operations by identity.\n" +
			"Start a development node with 'alknet serve --dev'; in another terminal,\n" +
			"'alknet call demo/echo '{\"text\":\"hi\"}'' reaches it through the ticket the node writes to its\n" +
			"state directory. 'alknet ls' lists what you may call. Shell completion: 'alknet completion bash'\n" +
			"(or zsh, fish); every command has --help with examples.",
		EnableShellCompletion: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "state-dir", Usage: "state directory (default $ALKNET_STATE_DIR, $XDG_STATE_HOME/alknet or ~/.local/state/alknet)"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json (logs go to stderr)"},
		},
		Before: func(ctx context.Context, c *cli.Command) (context.Context, error) {
			log, err := newLogger(e.stderr, c.String("log-level"), c.String("log-format"))
			if err != nil {
				return ctx, err
			}
			e.log = log
			return ctx, nil
		},
		Commands: []*cli.Command{initCommand(e), keyCommand(e), secretCommand(e), serveCommand(e), reloadCommand(e), peerCommand(e), apikeyCommand(e), callCommand(e), subCommand(e), lsCommand(e), schemaCommand(e), versionCommand(e)},
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
		UsageText: "alknet version",
		Action: func(context.Context, *cli.Command) error {
			fmt.Fprintf(e.stdout, "alknet %s\ngo %s\n", Version, runtime.Version())
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						fmt.Fprintf(e.stdout, "commit %s\n", s.Value)
					}
				}
				for _, d := range bi.Deps {
					fmt.Fprintf(e.stdout, "dep %s %s\n", d.Path, d.Version)
				}
			}
			return nil
		},
	}
}
