// Command alknet runs and talks to alknet nodes. See 'alknet --help'.
package main

import (
	"context"
	"os"

	"github.com/alkdev/alknet/cli/internal/app"
)

func main() {
	os.Exit(app.Main(context.Background(), os.Args, os.Stdin, os.Stdout, os.Stderr))
}
