package app

import (
	"errors"
	"fmt"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core/tlsconf"
)

// Exit codes (README, "Two commands").
const (
	ExitOK          = 0
	ExitUsage       = 1
	ExitConnection  = 2
	ExitInterrupted = 130
)

// exitError carries an exit code and the CODE word printed as "error: CODE: message".
type exitError struct {
	code  int
	word  string
	err   error
	hint  string // a second line, e.g. "run 'alknet call --help' for usage"
	quiet bool   // the command already said it on stdout (alknet status of a stopped node)
}

func (e *exitError) Error() string { return fmt.Sprintf("%s: %v", e.word, e.err) }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, a ...any) error {
	return &exitError{code: ExitUsage, word: "USAGE", err: fmt.Errorf(format, a...)}
}

func configErr(err error) error { return &exitError{code: ExitUsage, word: "CONFIG", err: err} }

func connErr(word string, err error) error {
	return &exitError{code: ExitConnection, word: word, err: err}
}

// exitCode maps an error returned by a command to the process exit code.
func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return ExitUsage
}

// Exit codes of remote errors.
const (
	ExitNotFound     = 3
	ExitForbidden    = 4
	ExitInvalidInput = 5
	ExitTimeout      = 6
	ExitRemote       = 7
)

// remoteErr maps a call error to its exit code and "CODE: message" line.
func remoteErr(err error) error {
	var ce *call.Error
	if !errors.As(err, &ce) {
		return &exitError{code: ExitRemote, word: call.CodeInternal, err: err}
	}
	code := ExitRemote
	switch {
	case errors.Is(err, call.ErrNotFound):
		code = ExitNotFound
	case errors.Is(err, call.ErrForbidden):
		code = ExitForbidden
	case errors.Is(err, call.ErrInvalidInput):
		code = ExitInvalidInput
	case errors.Is(err, call.ErrTimeout):
		code = ExitTimeout
	}
	return &exitError{code: code, word: ce.Code(), err: errors.New(ce.Message())}
}

func isPinMismatch(err error) bool { return errors.Is(err, tlsconf.ErrPinMismatch) }
