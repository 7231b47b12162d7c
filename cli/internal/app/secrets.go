package app

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

const maxSecretFile = 64 << 10

// readSecretFile reads a secret file whole and removes exactly one trailing "\n" or "\r\n"
// (token files: all surrounding white space). An empty result is an error.
func readSecretFile(path string, token bool) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usageErr("read %s: %v", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, usageErr("read %s: %v", path, err)
	}
	if len(data) > maxSecretFile {
		clear(data)
		return nil, usageErr("%s is larger than %d bytes", path, maxSecretFile)
	}
	var out []byte
	switch {
	case token:
		out = bytes.TrimSpace(data)
	case bytes.HasSuffix(data, []byte("\r\n")):
		out = data[:len(data)-2]
	case bytes.HasSuffix(data, []byte("\n")):
		out = data[:len(data)-1]
	default:
		out = data
	}
	if len(out) == 0 {
		return nil, usageErr("%s is empty", path)
	}
	secret := append([]byte(nil), out...)
	clear(data)
	return secret, nil
}

// stdinTerminal returns stdin's descriptor if it is a terminal.
func stdinTerminal(e *env) (int, bool) {
	f, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0, false
	}
	return int(f.Fd()), true
}

// secretFrom reads a secret from the file named by a flag, else from a no-echo prompt on a
// terminal. Environment variables are never read for secrets.
func secretFrom(e *env, file, flagName, prompt string, confirm bool) ([]byte, error) {
	if file != "" {
		return readSecretFile(file, false)
	}
	fd, ok := stdinTerminal(e)
	if !ok {
		return nil, usageErr("no terminal to ask for the %s: use --%s", prompt, flagName)
	}
	ask := func(p string) ([]byte, error) {
		fmt.Fprintf(e.stderr, "%s: ", p)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(e.stderr)
		if err != nil {
			return nil, usageErr("read %s: %v", p, err)
		}
		if len(b) == 0 {
			return nil, usageErr("the %s is empty", p)
		}
		return b, nil
	}
	first, err := ask(prompt)
	if err != nil || !confirm {
		return first, err
	}
	second, err := ask("Repeat " + prompt)
	if err != nil {
		clear(first)
		return nil, err
	}
	defer clear(second)
	if !bytes.Equal(first, second) {
		clear(first)
		return nil, usageErr("the two entries differ")
	}
	return first, nil
}

// confirm asks a yes/no question on a terminal; without one it is refused.
func confirm(e *env, question string) bool {
	if _, ok := stdinTerminal(e); !ok {
		return false
	}
	fmt.Fprintf(e.stderr, "%s [y/N] ", question)
	var answer string
	_, _ = fmt.Fscanln(e.stdin, &answer)
	return answer == "y" || answer == "Y" || answer == "yes"
}
