package app

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/urfave/cli/v3"

	"github.com/alkdev/alknet/cli/internal/keystore"
	"github.com/alkdev/alknet/cli/internal/nodeconfig"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/vault"
)

const keystoreFile = "keystore.json"

// minPassphraseRunes is the keystore passphrase length below which init warns.
const minPassphraseRunes = 12

// printMnemonicGrid shows a new mnemonic on a terminal as numbered words, four to a row, so
// it can be copied onto paper without losing the order.
func printMnemonicGrid(e *env, phrase []byte) {
	words := bytes.Fields(phrase)
	fmt.Fprintf(e.stdout, "mnemonic: write these %d words down, in order; they are the only way to recover the node's keys\n", len(words))
	var row bytes.Buffer
	for i, w := range words {
		fmt.Fprintf(&row, "%4d. %-10s", i+1, w)
		if (i+1)%4 == 0 || i == len(words)-1 {
			row.WriteByte('\n')
			_, _ = e.stdout.Write(row.Bytes())
			clear(row.Bytes())
			row.Reset()
		}
	}
}

func vaultFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "passphrase-file", Usage: "read the keystore passphrase from this file (default: prompt)"},
		&cli.StringFlag{Name: "bip39-passphrase-file", Usage: "derive keys with this BIP39 passphrase (never stored; needed at every unlock if used at init)"},
	}
}

// unlocked is an unlocked vault and the node key derived from it.
type unlocked struct {
	v   *vault.Vault
	key *identity.NodeKey
}

// unlock opens the keystore of the state directory and derives the node identity.
func unlock(e *env, c *cli.Command) (*unlocked, error) {
	dir, err := stateDir(c.Root().String("state-dir"))
	if err != nil {
		return nil, configErr(err)
	}
	path := filepath.Join(dir, keystoreFile)
	ks, err := keystore.Read(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, configErr(fmt.Errorf("no keystore in %s: run 'alknet init' first", dir))
	}
	if err != nil {
		return nil, configErr(err)
	}
	pass, err := secretFrom(e, c.String("passphrase-file"), "passphrase-file", "keystore passphrase", false)
	if err != nil {
		return nil, err
	}
	stopSpin := e.spin("unlocking the keystore…")
	phrase, err := ks.Open(pass)
	stopSpin()
	clear(pass)
	if err != nil {
		return nil, configErr(err)
	}
	defer clear(phrase)
	var bip39 []byte
	if f := c.String("bip39-passphrase-file"); f != "" {
		if bip39, err = readSecretFile(f, false); err != nil {
			return nil, err
		}
		defer clear(bip39)
	}
	u, err := unlockPhrase(phrase, bip39)
	if err != nil {
		return nil, err
	}
	if ks.Fingerprint != "" && u.key.Fingerprint() != ks.Fingerprint {
		u.v.Lock()
		hint := "give the same --bip39-passphrase-file as at init"
		if !ks.BIP39Passphrase {
			hint = "this keystore was made without a BIP39 passphrase: drop --bip39-passphrase-file"
		}
		return nil, configErr(fmt.Errorf("the derived identity %s is not the keystore's %s: %s", u.key.Fingerprint(), ks.Fingerprint, hint))
	}
	return u, nil
}

func unlockPhrase(phrase, bip39 []byte) (*unlocked, error) {
	v := vault.New(vault.CacheConfig{})
	if err := v.Unlock(phrase, bip39); err != nil {
		return nil, configErr(err)
	}
	dk, err := v.DeriveEd25519(vault.PathIdentity)
	if err != nil {
		v.Lock()
		return nil, configErr(err)
	}
	seed := dk.PrivateKey()
	dk.Wipe()
	key, err := identity.NewNodeKey(seed)
	clear(seed)
	if err != nil {
		v.Lock()
		return nil, configErr(err)
	}
	return &unlocked{v: v, key: key}, nil
}

func initCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "create the node's vault: a BIP39 mnemonic, encrypted at rest under a passphrase",
		UsageText: "alknet init                                   # new 24-word mnemonic, prompts for a passphrase\n" +
			"alknet init --recover                         # type an existing mnemonic\n" +
			"alknet init --recover --mnemonic-file M --passphrase-file P   # scripted",
		Description: "Writes <state dir>/keystore.json (mode 0600): the mnemonic encrypted with argon2id and AES-256-GCM\n" +
			"under the keystore passphrase. A new mnemonic is printed once ('mnemonic <words>'): write it down,\n" +
			"it is the only way to recover the node's keys. Without a terminal the new mnemonic is printed\n" +
			"only with --yes. Prints 'fingerprint <fp>', the node identity. Refuses to overwrite a keystore\n" +
			"unless --force.",
		Flags: append(vaultFlags(),
			&cli.IntFlag{Name: "words", Value: 24, Usage: "words in a new mnemonic: 12, 15, 18, 21 or 24"},
			&cli.BoolFlag{Name: "recover", Usage: "use an existing mnemonic instead of generating one"},
			&cli.StringFlag{Name: "mnemonic-file", Usage: "with --recover: read the mnemonic from this file (default: prompt)"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite an existing keystore"},
			&cli.BoolFlag{Name: "yes", Usage: "print a new mnemonic even without a terminal"},
			jsonFlag(),
		),
		Action: func(ctx context.Context, c *cli.Command) error {
			dir, err := stateDir(c.Root().String("state-dir"))
			if err != nil {
				return configErr(err)
			}
			path := filepath.Join(dir, keystoreFile)
			if _, err := os.Stat(path); err == nil && !c.Bool("force") {
				return usageErr("%s already exists; use --force to replace it (its keys are lost unless you have its mnemonic)", path)
			}
			var phrase []byte
			if c.Bool("recover") {
				if f := c.String("mnemonic-file"); f != "" {
					phrase, err = readSecretFile(f, false)
				} else {
					phrase, err = secretFrom(e, "", "mnemonic-file", "mnemonic", false)
				}
				if err != nil {
					return err
				}
				canonical, cerr := vault.CanonicalMnemonic(phrase)
				clear(phrase)
				if cerr != nil {
					return usageErr("%v", cerr)
				}
				phrase = canonical
			} else {
				if _, tty := stdinTerminal(e); !tty && !c.Bool("yes") && !isTTY(e.stdout) {
					return usageErr("no terminal: a new mnemonic is printed only with --yes (or use --recover)")
				}
				if phrase, err = vault.NewMnemonic(int(c.Int("words"))); err != nil {
					return usageErr("%v", err)
				}
			}
			defer clear(phrase)
			var bip39 []byte
			if f := c.String("bip39-passphrase-file"); f != "" {
				if bip39, err = readSecretFile(f, false); err != nil {
					return err
				}
				defer clear(bip39)
			}
			u, err := unlockPhrase(phrase, bip39)
			if err != nil {
				return err
			}
			defer u.v.Lock()
			pass, err := secretFrom(e, c.String("passphrase-file"), "passphrase-file", "keystore passphrase", true)
			if err != nil {
				return err
			}
			if n := utf8.RuneCount(pass); n < minPassphraseRunes {
				fmt.Fprintf(e.stderr, "warning: the keystore passphrase is short (%d characters): the keystore is only as strong as it; %d or more (or a few random words) are recommended\n", n, minPassphraseRunes)
			}
			stopSpin := e.spin("encrypting the keystore…")
			ks, err := keystore.Seal(phrase, pass, u.key.Fingerprint(), bip39 != nil, keystore.Params{})
			stopSpin()
			clear(pass)
			if err != nil {
				return err
			}
			if err := ensureStateDir(dir); err != nil {
				return configErr(err)
			}
			if err := keystore.Write(path, ks, c.Bool("force")); err != nil {
				return configErr(err)
			}
			switch {
			case c.Bool("json"):
				// Built by hand: the mnemonic stays in []byte (wiped) rather than a string.
				var buf bytes.Buffer
				buf.WriteString(`{`)
				if !c.Bool("recover") {
					buf.WriteString(`"mnemonic":"`)
					buf.Write(phrase) // BIP39 words: lowercase letters and spaces, nothing to escape
					buf.WriteString(`",`)
				}
				fmt.Fprintf(&buf, `"fingerprint":%q,"keystore":%q}`+"\n", u.key.Fingerprint(), path)
				_, _ = e.stdout.Write(buf.Bytes())
				clear(buf.Bytes())
				return nil
			case c.Bool("recover"):
			case isTTY(e.stdout):
				printMnemonicGrid(e, phrase)
			default:
				fmt.Fprintf(e.stdout, "mnemonic %s\n", phrase)
			}
			fmt.Fprintf(e.stdout, "fingerprint %s\n", u.key.Fingerprint())
			return nil
		},
	}
}

func keyCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "key",
		Usage: "the node's keys",
		Commands: []*cli.Command{keyGenCommand(e), {
			Name:  "show",
			Usage: "print the node's fingerprint, public key and ticket (from the vault, or from --key-file)",
			UsageText: "alknet key show\nalknet key show --passphrase-file P --json\nalknet key show --advertise node.example.com:7443\n" +
				"alknet key show --key-file admin.key   # a key file's fingerprint; no vault\n" +
				"alknet key show --iroh-relay https://relay.example.net/   # a ticket dialable over iroh through that relay",
			Description: "The ticket's addresses come from --advertise, else [node] advertise in the config, else the\n" +
				"running node of this state directory (when it has this key). Without any, the ticket has no\n" +
				"address and clients cannot dial it: the command says so on stderr.",
			Flags: append(vaultFlags(), configFlag(),
				&cli.StringFlag{Name: "key-file", Usage: "show this key file's identity instead of the vault's"},
				&cli.StringSliceFlag{Name: "advertise", Usage: "host:port to put in the ticket (QUIC and TCP); repeatable; overrides [node] advertise"},
				&cli.StringFlag{Name: "iroh-relay", Usage: "put iroh records in the ticket with this relay URL (the node's [iroh] relay)"},
				&cli.StringSliceFlag{Name: "iroh-advertise", Usage: "IP-literal host:port of the node's iroh endpoint to put in the ticket; repeatable (at most 8)"},
				&cli.BoolFlag{Name: "json", Usage: `print {"fingerprint","public_key","ticket","addresses_from"}`},
			),
			Action: func(ctx context.Context, c *cli.Command) error {
				var key *identity.NodeKey
				if kf := c.String("key-file"); kf != "" {
					k, err := identity.LoadKeyFile(kf, e.log)
					if err != nil {
						return configErr(err)
					}
					key = k
				} else {
					u, err := unlock(e, c)
					if err != nil {
						return err
					}
					defer u.v.Lock()
					key = u.key
				}
				addrs, from, err := advertiseFor(c, key.Fingerprint())
				if err != nil {
					return err
				}
				tk := identity.Ticket{Fingerprint: key.Fingerprint(), QUIC: addrs, TCP: addrs}
				if from == "running node" {
					if local, err := ticketFromStateDir(c.Root().String("state-dir")); err == nil {
						tk = local
					}
				}
				if relay, direct := c.String("iroh-relay"), c.StringSlice("iroh-advertise"); relay != "" || len(direct) > 0 {
					tk.Iroh = &identity.IrohAddr{RelayURL: relay, Addrs: direct}
				}
				ticket, err := tk.Encode()
				if err != nil {
					return usageErr("--advertise, --iroh-relay, --iroh-advertise: %v", err)
				}
				pub := hex.EncodeToString(key.Public())
				if from == "" && tk.Iroh == nil {
					fmt.Fprintln(e.stderr, "note: the ticket has no address, so clients cannot dial it: give --advertise HOST:PORT, set [node] advertise in the config, or use the ticket 'alknet serve' prints")
				}
				if c.Bool("json") {
					return writeJSON(e, map[string]string{"fingerprint": key.Fingerprint(), "public_key": pub, "ticket": ticket, "addresses_from": from})
				}
				fmt.Fprintf(e.stdout, "fingerprint %s\npublic_key %s\nticket %s\n", key.Fingerprint(), pub, ticket)
				return nil
			},
		}},
	}
}

// advertiseFor picks a ticket's addresses: --advertise, else [node] advertise, else the
// running node's (when it has fingerprint fp). from says which ("" = none found).
func advertiseFor(c *cli.Command, fp string) (addrs []string, from string, err error) {
	if a := c.StringSlice("advertise"); len(a) > 0 {
		return a, "--advertise", nil
	}
	path, explicit, err := configPath(c)
	if err != nil {
		return nil, "", err
	}
	f, err := nodeconfig.Load(path, !explicit)
	if err != nil {
		return nil, "", configErr(err)
	}
	if len(f.Node.Advertise) > 0 {
		return f.Node.Advertise, "config", nil
	}
	if tk, err := ticketFromStateDir(c.Root().String("state-dir")); err == nil && tk.Fingerprint == fp {
		return append(tk.QUIC, tk.TCP...), "running node", nil
	}
	return nil, "", nil
}

func secretCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "secret",
		Usage: "seal secrets (provider API keys) into EncryptedData blobs for the config file, or open them",
		Commands: []*cli.Command{
			{
				Name:        "seal",
				Usage:       "encrypt a secret with the vault and print the EncryptedData JSON",
				UsageText:   "alknet secret seal --secret-file openai.key > openai.blob.json\nalknet secret seal     # prompts for the secret",
				Description: "The secret is read from --secret-file (one trailing newline removed) or a no-echo prompt, never\nfrom arguments or the environment; it must be UTF-8.",
				Flags: append(vaultFlags(),
					&cli.StringFlag{Name: "secret-file", Usage: "read the secret from this file (default: prompt)"},
					&cli.IntFlag{Name: "key-version", Value: int(vault.CurrentKeyVersion), Usage: "encryption key version (2 or more)"},
				),
				Action: func(ctx context.Context, c *cli.Command) error {
					u, err := unlock(e, c)
					if err != nil {
						return err
					}
					defer u.v.Lock()
					secret, err := secretFrom(e, c.String("secret-file"), "secret-file", "secret", false)
					if err != nil {
						return err
					}
					defer clear(secret)
					ver := c.Int("key-version")
					if ver < 0 || int64(ver) > int64(vault.MaxKeyVersion) {
						return usageErr("--key-version %d: %v", ver, vault.ErrInvalidKeyVersion)
					}
					ed, err := u.v.Encrypt(secret, uint32(ver))
					if err != nil {
						return usageErr("%v", err)
					}
					out, _ := json.Marshal(ed)
					fmt.Fprintf(e.stdout, "%s\n", out)
					return nil
				},
			},
			{
				Name:      "open",
				Usage:     "decrypt an EncryptedData blob and print the secret (asks first)",
				ArgsUsage: "BLOB|@file|-",
				UsageText: "alknet secret open @openai.blob.json\nalknet secret open --yes - < blob.json",
				Flags: append(vaultFlags(),
					&cli.BoolFlag{Name: "yes", Usage: "print without asking (needed without a terminal)"},
				),
				Action: func(ctx context.Context, c *cli.Command) error {
					if c.Args().Len() != 1 {
						return usageErr("want one BLOB argument (JSON, @file or -)")
					}
					raw, err := readInput(e, c.Args().First())
					if err != nil {
						return err
					}
					var ed vault.EncryptedData
					if err := json.Unmarshal(raw, &ed); err != nil {
						return usageErr("%v", err)
					}
					if !c.Bool("yes") && !confirm(e, "Print the decrypted secret?") {
						return usageErr("not printed: confirm on a terminal or pass --yes")
					}
					u, err := unlock(e, c)
					if err != nil {
						return err
					}
					defer u.v.Lock()
					pt, err := u.v.Decrypt(&ed)
					if err != nil {
						return usageErr("%v", err)
					}
					defer clear(pt)
					_, _ = e.stdout.Write(append(pt, '\n'))
					return nil
				},
			},
		},
	}
}
