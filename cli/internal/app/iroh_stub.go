//go:build !cgo || noiroh

package app

import (
	"context"
	"log/slog"

	"github.com/alkdev/alknet/cli/internal/metrics"
	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/iroh"
)

func irohVersion() string { return "iroh none" }

func bindIrohServe(context.Context, irohServeConfig) (irohServing, error) {
	return nil, iroh.ErrNotBuilt
}

func irohDialer(context.Context, *identity.NodeKey, identity.Ticket, *slog.Logger) (client.IrohDialer, func(), error) {
	return nil, nil, iroh.ErrNotBuilt
}

// irohBuilt: this binary was built without iroh (noiroh or no cgo).
const irohBuilt = false

func irohMetrics(irohServing) metrics.IrohStats { return metrics.IrohStats{} }
