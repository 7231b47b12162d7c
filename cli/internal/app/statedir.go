package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// File names inside the state directory (README, "Two commands").
const (
	ticketFile   = "node.ticket"
	pidFile      = "node.pid"
	adminKeyFile = "node.admin.key" // the local admin key of the running node (0600)
)

// stateDir resolves the state directory: --state-dir, else $ALKNET_STATE_DIR (a path, never a
// secret), else $XDG_STATE_HOME/alknet, else $HOME/.local/state/alknet.
func stateDir(flag string) (string, error) {
	switch {
	case flag != "":
		return flag, nil
	case os.Getenv("ALKNET_STATE_DIR") != "":
		return os.Getenv("ALKNET_STATE_DIR"), nil
	case os.Getenv("XDG_STATE_HOME") != "":
		return filepath.Join(os.Getenv("XDG_STATE_HOME"), "alknet"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("state directory: no --state-dir, $ALKNET_STATE_DIR, $XDG_STATE_HOME or home directory: %w", err)
	}
	return filepath.Join(home, ".local", "state", "alknet"), nil
}

// ensureStateDir creates dir with mode 0700 if needed.
func ensureStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state directory %q: %w", dir, err)
	}
	return nil
}

// writeAtomic writes data to dir/name through a temporary file and a rename, so readers never
// see a partial file.
func writeAtomic(dir, name string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), mode)); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
