package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/alkdev/alknet/cli/internal/nodeconfig"
	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/identity"
)

// The config file is edited as text so comments and layout survive: a new entry is appended
// as a block; removing one deletes its table block. The result is validated before it is
// written (temp file + rename).

func loadForEdit(c *cli.Command) (path string, text []byte, f *nodeconfig.File, err error) {
	path, _, err = configPath(c)
	if err != nil {
		return "", nil, nil, err
	}
	text, err = os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", nil, nil, configErr(err)
	}
	if f, err = nodeconfig.Parse(path, text); err != nil {
		return "", nil, nil, configErr(err)
	}
	return path, text, f, nil
}

func saveEdited(path string, text []byte) error {
	f, err := nodeconfig.Parse(path, text)
	if err == nil {
		err = f.Validate(path, nil, nodeListen)
	}
	if err != nil {
		return configErr(fmt.Errorf("the edited config would be invalid, nothing written: %w", err))
	}
	dir := filepath.Dir(path)
	if err := ensureStateDir(dir); err != nil {
		return configErr(err)
	}
	return writeAtomic(dir, filepath.Base(path), text, 0o600)
}

func tomlStrings(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func appendBlock(text []byte, block string) []byte {
	if len(text) > 0 && !bytes.HasSuffix(text, []byte("\n")) {
		text = append(text, '\n')
	}
	return append(append(text, '\n'), block...)
}

// removeBlock deletes the [[table]] block whose key = value line matches.
func removeBlock(text []byte, table, key, value string) ([]byte, bool) {
	lines := strings.SplitAfter(string(text), "\n")
	header := "[[" + table + "]]"
	want := key + "=" + strconv.Quote(value) // compared with spaces removed
	var out []string
	removed := false
	for i := 0; i < len(lines); {
		if strings.TrimSpace(lines[i]) != header {
			out = append(out, lines[i])
			i++
			continue
		}
		j := i + 1
		match := false
		for j < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[j]), "[") {
			if strings.ReplaceAll(strings.TrimSpace(lines[j]), " ", "") == want {
				match = true
			}
			j++
		}
		if match {
			removed = true
		} else {
			out = append(out, lines[i:j]...)
		}
		i = j
	}
	return []byte(strings.Join(out, "")), removed
}

func peerCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "peer",
		Usage: "manage the peers allowed to connect (edits [[peer]] in the config file; then 'alknet reload')",
		Commands: []*cli.Command{
			{
				Name:      "add",
				Usage:     "add a peer by its key fingerprint",
				ArgsUsage: "PEER_ID",
				UsageText: "alknet peer add alice --fingerprint ed25519:… --scope admin\nalknet reload",
				Flags: []cli.Flag{configFlag(),
					&cli.StringSliceFlag{Name: "fingerprint", Usage: "the peer's fingerprint (repeatable)"},
					&cli.StringSliceFlag{Name: "scope", Usage: "a scope granted to the peer (repeatable)"},
					&cli.StringFlag{Name: "display-name", Usage: "a human name"},
					jsonFlag(),
				},
				Action: func(ctx context.Context, c *cli.Command) error {
					if c.Args().Len() != 1 {
						return usageErr("want PEER_ID")
					}
					id := c.Args().First()
					path, text, f, err := loadForEdit(c)
					if err != nil {
						return err
					}
					for _, p := range f.Peers {
						if p.PeerID == id {
							return usageErr("peer %q already exists in %s", id, path)
						}
					}
					fps := c.StringSlice("fingerprint")
					if len(fps) == 0 {
						return usageErr("--fingerprint is required")
					}
					block := fmt.Sprintf("[[peer]]\npeer_id = %q\n", id)
					if dn := c.String("display-name"); dn != "" {
						block += fmt.Sprintf("display_name = %q\n", dn)
					}
					block += "fingerprints = " + tomlStrings(fps) + "\nscopes = " + tomlStrings(c.StringSlice("scope")) + "\n"
					if err := saveEdited(path, appendBlock(text, block)); err != nil {
						return err
					}
					if c.Bool("json") {
						return writeJSON(e, map[string]string{"peer_id": id, "config": path})
					}
					fmt.Fprintf(e.stdout, "peer %s added to %s; run 'alknet reload' to apply\n", id, path)
					return nil
				},
			},
			{
				Name:      "rm",
				Usage:     "remove a peer",
				ArgsUsage: "PEER_ID",
				UsageText: "alknet peer rm alice\nalknet reload",
				Flags:     []cli.Flag{configFlag(), jsonFlag()},
				Action: func(ctx context.Context, c *cli.Command) error {
					if c.Args().Len() != 1 {
						return usageErr("want PEER_ID")
					}
					path, text, _, err := loadForEdit(c)
					if err != nil {
						return err
					}
					out, ok := removeBlock(text, "peer", "peer_id", c.Args().First())
					if !ok {
						return &exitError{code: ExitNotFound, word: "NOT_FOUND", err: fmt.Errorf("no peer %q in %s", c.Args().First(), path)}
					}
					if err := saveEdited(path, out); err != nil {
						return err
					}
					if c.Bool("json") {
						return writeJSON(e, map[string]string{"peer_id": c.Args().First(), "config": path})
					}
					fmt.Fprintf(e.stdout, "peer %s removed from %s; run 'alknet reload' to apply\n", c.Args().First(), path)
					return nil
				},
			},
			{
				Name:      "ls",
				Usage:     "list peers",
				UsageText: "alknet peer ls\nalknet peer ls --json --config node.toml",
				Flags:     []cli.Flag{configFlag(), jsonFlag()},
				Action: func(ctx context.Context, c *cli.Command) error {
					_, _, f, err := loadForEdit(c)
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return writeJSON(e, peerList(f))
					}
					tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "PEER\tENABLED\tSCOPES\tFINGERPRINTS")
					for _, p := range f.Dynamic().Peers {
						fmt.Fprintf(tw, "%s\t%v\t%s\t%s\n", p.PeerID, p.Enabled, strings.Join(p.Scopes, ","), strings.Join(p.Fingerprints, ","))
					}
					return tw.Flush()
				},
			},
		},
	}
}

func apikeyCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "apikey",
		Usage: "manage alk_ API keys (edits [[apikey]] in the config file; then 'alknet reload')",
		Commands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "create an API key; the token is printed once and only its hash is stored",
				UsageText: "alknet apikey create --scope admin --description ci --out ci.token   # written with mode 0600\nalknet reload",
				Flags: []cli.Flag{configFlag(),
					&cli.StringFlag{Name: "out", Usage: "write the token to this new file (mode 0600) instead of stdout"},
					&cli.StringSliceFlag{Name: "scope", Usage: "a scope granted to the key (repeatable; at least one)"},
					&cli.StringFlag{Name: "description", Usage: "what the key is for"},
					&cli.DurationFlag{Name: "expires-in", HideDefault: true, Usage: "expire after this long (e.g. 720h); default never"},
					jsonFlag(),
				},
				Action: func(ctx context.Context, c *cli.Command) error {
					scopes := c.StringSlice("scope")
					if len(scopes) == 0 {
						return usageErr("--scope is required")
					}
					path, text, f, err := loadForEdit(c)
					if err != nil {
						return err
					}
					var exp time.Time
					if d := c.Duration("expires-in"); d > 0 {
						exp = time.Now().Add(d).UTC().Truncate(time.Second)
					}
					token, entry, err := auth.NewAPIKey(scopes, c.String("description"), exp, f.Dynamic().APIKeys)
					if err != nil {
						return err
					}
					block := fmt.Sprintf("[[apikey]]\nprefix = %q\nhash = %q\nscopes = %s\n", entry.Prefix, entry.Hash, tomlStrings(scopes))
					if entry.Description != "" {
						block += fmt.Sprintf("description = %q\n", entry.Description)
					}
					if !exp.IsZero() {
						block += "expires_at = " + exp.Format(time.RFC3339) + "\n"
					}
					// The token file first: if it cannot be written, the config is left as it was.
					out := c.String("out")
					if out != "" {
						if err := writeSecretFile(out, token+"\n"); err != nil {
							return err
						}
					}
					if err := saveEdited(path, appendBlock(text, block)); err != nil {
						if out != "" {
							_ = os.Remove(out)
						}
						return err
					}
					if c.Bool("json") {
						v := apiKeyJSON(entry.Prefix, scopes, entry.Description, exp)
						v["config"] = path
						if out == "" {
							v["token"] = token
						} else {
							v["token_file"] = out
						}
						if err := writeJSON(e, v); err != nil {
							return err
						}
					} else if out == "" {
						fmt.Fprintln(e.stdout, token)
					}
					fmt.Fprintf(e.stderr, "api key %s added to %s; the token above is shown only once; run 'alknet reload' to apply\n", entry.Prefix, path)
					return nil
				},
			},
			{
				Name:      "revoke",
				Usage:     "revoke an API key by its prefix or its whole token",
				ArgsUsage: "PREFIX|TOKEN",
				UsageText: "alknet apikey revoke alk_AbCd          # the token's first 8 characters\nalknet apikey revoke \"$(cat ci.token)\"  # or the whole token (checked against the stored hash)\nalknet reload",
				Flags:     []cli.Flag{configFlag(), jsonFlag()},
				Action: func(ctx context.Context, c *cli.Command) error {
					if c.Args().Len() != 1 {
						return usageErr("want PREFIX (the token's first 8 characters) or the whole token")
					}
					arg := c.Args().First()
					if !strings.HasPrefix(arg, "alk_") || len(arg) < 8 {
						return usageErr("want PREFIX (alk_ and 4 more characters) or the whole token")
					}
					prefix := arg[:8] // the rest of a whole token is secret: never echoed
					path, text, f, err := loadForEdit(c)
					if err != nil {
						return err
					}
					if len(arg) > 8 && !tokenMatches(f.Dynamic().APIKeys, prefix, arg) {
						return &exitError{code: ExitNotFound, word: "NOT_FOUND", err: fmt.Errorf("the token does not match API key %s in %s", prefix, path)}
					}
					out, ok := removeBlock(text, "apikey", "prefix", prefix)
					if !ok {
						return &exitError{code: ExitNotFound, word: "NOT_FOUND", err: fmt.Errorf("no API key %s in %s", prefix, path)}
					}
					if err := saveEdited(path, out); err != nil {
						return err
					}
					if c.Bool("json") {
						return writeJSON(e, map[string]string{"prefix": prefix, "config": path})
					}
					fmt.Fprintf(e.stdout, "api key %s revoked in %s; run 'alknet reload' to apply\n", prefix, path)
					return nil
				},
			},
			{
				Name:      "ls",
				Usage:     "list API keys (prefixes only)",
				UsageText: "alknet apikey ls\nalknet apikey ls --json",
				Flags:     []cli.Flag{configFlag(), jsonFlag()},
				Action: func(ctx context.Context, c *cli.Command) error {
					_, _, f, err := loadForEdit(c)
					if err != nil {
						return err
					}
					if c.Bool("json") {
						keys := []map[string]any{}
						for _, k := range f.APIKeys {
							keys = append(keys, apiKeyJSON(k.Prefix, k.Scopes, k.Description, k.ExpiresAt))
						}
						return writeJSON(e, keys)
					}
					tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "PREFIX\tSCOPES\tEXPIRES\tDESCRIPTION")
					for _, k := range f.APIKeys {
						exp := "never"
						if !k.ExpiresAt.IsZero() {
							exp = k.ExpiresAt.Format(time.RFC3339)
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Prefix, strings.Join(k.Scopes, ","), exp, k.Description)
					}
					return tw.Flush()
				},
			},
		},
	}
}

// keyGenCommand writes a fresh key file, e.g. for a client that calls nodes as a peer.
func keyGenCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "gen",
		Usage:     "write a new Ed25519 key file (PKCS#8 PEM, 0600) for a client and print its fingerprint",
		UsageText: "alknet key gen --out admin.key\nalknet peer add admin --fingerprint <printed fingerprint> --scope admin",
		Flags:     []cli.Flag{&cli.StringFlag{Name: "out", Usage: "key file to create (never overwritten)", Required: true}, jsonFlag()},
		Action: func(ctx context.Context, c *cli.Command) error {
			k, err := identity.Generate()
			if err != nil {
				return err
			}
			if err := identity.WriteKeyFile(c.String("out"), k); err != nil {
				return configErr(err)
			}
			if c.Bool("json") {
				return writeJSON(e, map[string]string{"fingerprint": k.Fingerprint(), "key_file": c.String("out")})
			}
			fmt.Fprintf(e.stdout, "fingerprint %s\n", k.Fingerprint())
			return nil
		},
	}
}

// peerJSON is one peer of `peer ls --json` (the token hash is not shown).
type peerJSON struct {
	PeerID       string              `json:"peer_id"`
	DisplayName  string              `json:"display_name"`
	Enabled      bool                `json:"enabled"`
	Scopes       []string            `json:"scopes"`
	Fingerprints []string            `json:"fingerprints"`
	HasToken     bool                `json:"has_token"`
	Resources    map[string][]string `json:"resources"`
}

func peerList(f *nodeconfig.File) []peerJSON {
	out := []peerJSON{}
	for _, p := range f.Dynamic().Peers {
		res := p.Resources
		if res == nil {
			res = map[string][]string{}
		}
		out = append(out, peerJSON{PeerID: p.PeerID, DisplayName: p.DisplayName, Enabled: p.Enabled, Scopes: nonNil(p.Scopes),
			Fingerprints: nonNil(p.Fingerprints), HasToken: p.AuthTokenHash != "", Resources: res})
	}
	return out
}

// apiKeyJSON is one API key as --json shows it: never its hash.
func apiKeyJSON(prefix string, scopes []string, description string, expires time.Time) map[string]any {
	v := map[string]any{"prefix": prefix, "scopes": nonNil(scopes), "description": description, "expires_at": nil}
	if !expires.IsZero() {
		v["expires_at"] = expires.UTC().Format(time.RFC3339)
	}
	return v
}

// tokenMatches reports whether token is the one whose hash the API key with prefix stores
// (compared in constant time, through the auth package's policy).
func tokenMatches(keys []auth.APIKeyEntry, prefix, token string) bool {
	for _, k := range keys {
		if k.Prefix != prefix {
			continue
		}
		p, err := auth.NewPolicy(nil, []auth.APIKeyEntry{k}, time.Now)
		if err != nil {
			return false
		}
		_, ok := p.FromToken(context.Background(), token)
		return ok
	}
	return false
}

// writeSecretFile creates path (which must not exist) with mode 0600 and writes s to it.
func writeSecretFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return configErr(fmt.Errorf("token file: %w", err))
	}
	if _, err := f.WriteString(s); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("token file: %w", err)
	}
	return f.Close()
}
