//go:build unix

package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFile is held (flock, exclusive) by the node serving a state directory.
const lockFile = "node.lock"

// lockStateDir takes the state directory's lock for the node's lifetime and writes our pid
// into it; a second node gets CONFIG "state directory in use by pid N". The kernel drops the
// lock when the process ends, however it ends.
func lockStateDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, configErr(fmt.Errorf("state directory lock: %w", err))
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(b))
			if _, perr := strconv.Atoi(pid); perr != nil {
				pid = "unknown"
			}
			return nil, configErr(fmt.Errorf("state directory in use by pid %s (%s)", pid, dir))
		}
		return nil, configErr(fmt.Errorf("state directory lock: %w", err))
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { _ = f.Close() }, nil
}
