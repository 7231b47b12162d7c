// Package interoptest runs the real components the adapters' interop tests meet (docs/http.md
// §10): Node.js packages pinned in adapters/testdata/interop (installed by make interop-deps),
// each run as `node <bin>` on 127.0.0.1, in its own process group, with a temporary HOME.
//
// A test calls NeedNode first: it skips only when node is not on PATH, and fails (naming the
// fix) when the packages are missing.
package interoptest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alkdev/alknet/adapters/internal/adaptertest"
)

// Dir is adapters/testdata/interop, found from this file (tests run from source).
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "interop")
}

// InspectorDir is adapters/testdata/inspector.
func InspectorDir() string { return filepath.Join(Dir(), "..", "inspector") }

// NeedNode skips t without node on PATH and fails it when the interop packages are not
// installed. It returns node's path.
func NeedNode(t testing.TB) string {
	t.Helper()
	node, skip, fail := check(exec.LookPath, Dir())
	if skip != "" {
		t.Skip(skip)
	}
	if fail != "" {
		t.Fatal(fail)
	}
	return node
}

// check is NeedNode's rule: skip only without node, fail without the packages in dir.
func check(lookPath func(string) (string, error), dir string) (node, skip, fail string) {
	node, err := lookPath("node")
	if err != nil {
		return "", "node not found on PATH: interop test skipped", ""
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json")); err != nil {
		return node, "", fmt.Sprintf("the interop packages are not installed in %s: run make interop-deps", dir)
	}
	return node, "", ""
}

// NodeVersion returns node's major and minor version.
func NodeVersion(t testing.TB) (major, minor int) {
	t.Helper()
	out, err := exec.Command("node", "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), ".")
	major, _ = strconv.Atoi(parts[0])
	if len(parts) > 1 {
		minor, _ = strconv.Atoi(parts[1])
	}
	return major, minor
}

// Bin is the script a package's bin entry names, e.g. Bin(t, "@redocly/cli", "redocly").
func Bin(t testing.TB, pkg, name string) string {
	t.Helper()
	dir := filepath.Join(Dir(), "node_modules", pkg)
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		t.Fatalf("%s is not installed: run make interop-deps (%v)", pkg, err)
	}
	var p struct {
		Bin json.RawMessage `json:"bin"`
	}
	_ = json.Unmarshal(b, &p)
	var one string
	if json.Unmarshal(p.Bin, &one) == nil {
		return filepath.Join(dir, one)
	}
	var many map[string]string
	if json.Unmarshal(p.Bin, &many) != nil || many[name] == "" {
		t.Fatalf("%s has no bin %q", pkg, name)
	}
	return filepath.Join(dir, many[name])
}

// Fixture is the path of a file under adapters/testdata/interop.
func Fixture(parts ...string) string { return filepath.Join(append([]string{Dir()}, parts...)...) }

// Proc is a running node process.
type Proc struct {
	cmd    *exec.Cmd
	Stdout *LineReader
	stderr *adaptertest.LogBuffer
	done   chan struct{}
	err    error
}

// Command returns `node <script> args…` in its own process group with HOME set to a
// temporary directory and the environment reduced to PATH and extra.
func Command(t testing.TB, script string, args []string, extra ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("node", append([]string{script}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "NODE_NO_WARNINGS=1"}, extra...)
	cmd.Dir = Dir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// Start starts `node <script> args…` (see Command); the process group is killed at cleanup.
func Start(t testing.TB, script string, args []string, extra ...string) *Proc {
	t.Helper()
	cmd := Command(t, script, args, extra...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &Proc{cmd: cmd, stderr: &adaptertest.LogBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.Stdout = newLineReader(out)
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.Kill() })
	return p
}

// Kill kills the process group and waits for the process.
func (p *Proc) Kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Stderr returns what the process wrote to stderr so far.
func (p *Proc) Stderr() string { return p.stderr.String() }

// JSONLine waits up to 30 s for the first stdout line that is a JSON object and decodes it.
func (p *Proc) JSONLine(t testing.TB, v any) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-p.Stdout.Lines:
			if !ok {
				t.Fatalf("the process ended without a JSON line; stderr:\n%s", p.Stderr())
			}
			if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), v) == nil {
				return
			}
		case <-deadline:
			t.Fatalf("no JSON line within 30 s; stderr:\n%s", p.Stderr())
		}
	}
}

// Run runs `node <script> args…` to completion within ctx, returning stdout and stderr.
func Run(ctx context.Context, t testing.TB, script string, args []string, extra ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := Command(t, script, args, extra...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Start(); err != nil {
		return "", "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		err = fmt.Errorf("%s: %w", filepath.Base(script), ctx.Err())
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // whatever it left behind
	return o.String(), e.String(), err
}

// LineReader delivers a stream's lines on a channel.
type LineReader struct{ Lines chan string }

func newLineReader(r io.Reader) *LineReader {
	lr := &LineReader{Lines: make(chan string, 256)}
	go func() {
		defer close(lr.Lines)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			select {
			case lr.Lines <- sc.Text():
			default: // nobody reads: drop, never stall the process
			}
		}
	}()
	return lr
}
