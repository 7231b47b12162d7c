package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/urfave/cli/v3"
)

// suggest returns up to three names close to op by edit distance (at most a third of op's
// length, at least 2), nearest first, then by name.
func suggest(op string, names []string) []string {
	limit := max(2, len([]rune(op))/3)
	type near struct {
		name string
		d    int
	}
	var found []near
	for _, n := range names {
		if d := editDistance(op, n); d <= limit && n != op {
			found = append(found, near{n, d})
		}
	}
	sort.Slice(found, func(i, j int) bool {
		if found[i].d != found[j].d {
			return found[i].d < found[j].d
		}
		return found[i].name < found[j].name
	})
	var out []string
	for i := 0; i < len(found) && i < 3; i++ {
		out = append(out, found[i].name)
	}
	return out
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// Completion of operation names reads the target's catalogue, cached in the state directory
// for a short while so that every <TAB> does not dial.
const (
	completionCacheFile = "completion.json"
	completionCacheTTL  = 30 * time.Second
	completionDial      = 2 * time.Second
	maxCompletionCache  = 1 << 20
)

type completionCache struct {
	Fingerprint string    `json:"fingerprint"`
	At          time.Time `json:"at"`
	Operations  []string  `json:"operations"`
}

// completeOperation completes the OP argument of call, sub and schema (flags as usual).
func completeOperation(e *env) cli.ShellCompleteFunc {
	return func(ctx context.Context, c *cli.Command) {
		if c.NArg() > 0 || lastArgIsFlag() {
			cli.DefaultCompleteWithFlags(ctx, c)
			return
		}
		for _, name := range operationNames(ctx, e, c) {
			fmt.Fprintln(e.stdout, name)
		}
	}
}

// lastArgIsFlag reports whether the word being completed starts with "-".
func lastArgIsFlag() bool {
	args := os.Args
	for i := len(args) - 1; i >= 0; i-- {
		if args[i] == "--generate-shell-completion" {
			continue
		}
		return len(args[i]) > 0 && args[i][0] == '-'
	}
	return false
}

// operationNames is the target's visible catalogue, from the cache when it is fresh. Every
// failure yields no names: completion never prints an error.
func operationNames(ctx context.Context, e *env, c *cli.Command) []string {
	tk, err := target(c)
	if err != nil {
		return nil
	}
	dir, derr := stateDir(c.Root().String("state-dir"))
	cachePath := filepath.Join(dir, completionCacheFile)
	if derr == nil {
		if data, err := readLimited(cachePath, maxCompletionCache); err == nil {
			var cc completionCache
			if json.Unmarshal(data, &cc) == nil && cc.Fingerprint == tk.Fingerprint && time.Since(cc.At) < completionCacheTTL {
				return cc.Operations
			}
		}
	}
	spec := specOf(c)
	spec.timeout = completionDial
	s, err := connectTicket(ctx, e, tk, spec, nil)
	if err != nil {
		return nil
	}
	defer s.close()
	ops, err := listOperations(ctx, s)
	if err != nil {
		return nil
	}
	names := opNames(ops)
	if derr == nil && ensureStateDir(dir) == nil {
		data, _ := json.Marshal(completionCache{Fingerprint: tk.Fingerprint, At: time.Now(), Operations: names})
		_ = writeAtomic(dir, completionCacheFile, data, 0o600)
	}
	return names
}

// readLimited reads at most limit bytes of path.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}
