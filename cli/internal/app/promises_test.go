package app

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/alkdev/alknet/call"
)

// README: the state directory is --state-dir, else $ALKNET_STATE_DIR, else
// $XDG_STATE_HOME/alknet, else ~/.local/state/alknet.
func TestStateDirFallbackOrder(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, tc := range []struct {
		name, flag, alknet, xdg, want string
	}{
		{"flag first", "/f", "/a", "/x", "/f"},
		{"then ALKNET_STATE_DIR", "", "/a", "/x", "/a"},
		{"then XDG_STATE_HOME", "", "", "/x", "/x/alknet"},
		{"then the home directory", "", "", "", filepath.Join(home, ".local", "state", "alknet")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("ALKNET_STATE_DIR", tc.alknet)
			t.Setenv("XDG_STATE_HOME", tc.xdg)
			got, err := stateDir(tc.flag)
			if err != nil || got != tc.want {
				t.Fatalf("stateDir(%q) = %q, %v; want %q", tc.flag, got, err, tc.want)
			}
		})
	}
}

// README: exit codes of remote errors: 3 NOT_FOUND, 4 FORBIDDEN, 5 INVALID_INPUT, 6 TIMEOUT,
// 7 every other remote error (protocol or domain code), printed as "CODE: message".
func TestRemoteExitCodes(t *testing.T) {
	for code, want := range map[string]int{
		call.CodeNotFound: 3, call.CodeForbidden: 4, call.CodeInvalidInput: 5, call.CodeTimeout: 6,
		call.CodeInternal: 7, call.CodeInvalidOperationType: 7, "QUOTA_EXCEEDED": 7,
	} {
		err := remoteErr(call.NewError(code, "m"))
		var ee *exitError
		if exitCode(err) != want || !errors.As(err, &ee) || ee.word != code {
			t.Errorf("%s: exit %d (%v), want %d", code, exitCode(err), err, want)
		}
	}
	if got := exitCode(remoteErr(errors.New("not a call error"))); got != 7 {
		t.Errorf("a non-call error: exit %d, want 7", got)
	}
}

// README: secrets never come from environment variables. The CLI reads exactly these
// variables, none of them a secret; a new os.Getenv fails here until it is reviewed.
func TestNoSecretsFromEnvironment(t *testing.T) {
	allowed := map[string]bool{"ALKNET_STATE_DIR": true, "XDG_STATE_HOME": true}
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			c, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := c.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); !ok || id.Name != "os" {
				return true
			}
			switch sel.Sel.Name {
			case "Environ", "ExpandEnv":
				t.Errorf("%s: os.%s reads the whole environment", path, sel.Sel.Name)
			case "Getenv", "LookupEnv":
				name := "a non-constant name"
				if lit, ok := c.Args[0].(*ast.BasicLit); ok {
					name, _ = strconv.Unquote(lit.Value)
				}
				if !allowed[name] {
					t.Errorf("%s: os.%s(%s) is not an allowed variable", path, sel.Sel.Name, name)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
