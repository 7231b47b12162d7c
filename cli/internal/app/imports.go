package app

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/alkdev/alknet/adapters/mcp"
	"github.com/alkdev/alknet/adapters/openapi"
	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/cli/internal/nodeconfig"
)

// adapterImports are the running [[openapi_import]] and [[mcp_import]] sections.
type adapterImports struct {
	regs    []call.HandlerRegistration
	closers []func(context.Context)
}

// close ends the imports (MCP children: stdin, 2 s, SIGTERM, 2 s, SIGKILL to the group).
func (a *adapterImports) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range a.closers {
		wg.Go(func() { c(ctx) })
	}
	wg.Wait()
}

func visibilityOf(v string) call.Visibility {
	if v == "external" {
		return call.VisibilityExternal
	}
	return call.VisibilityInternal
}

// startAdapterImports runs every adapter import at once (docs/http.md §8): one failing stops
// start-up, named and without secrets, unless it is optional (then it is logged).
func (n *node) startAdapterImports(ctx context.Context) (*adapterImports, error) {
	f := n.file
	out := &adapterImports{}
	type result struct {
		key      string
		optional bool
		regs     []call.HandlerRegistration
		close    func(context.Context)
		err      error
	}
	results := make([]result, len(f.OpenAPIImports)+len(f.MCPImports))
	var wg sync.WaitGroup
	for i, im := range f.OpenAPIImports {
		wg.Go(func() {
			r := &results[i]
			r.key, r.optional = fmt.Sprintf("openapi_import[%d] (%s)", i, im.Service), im.Optional
			imp, err := openapi.Import(ctx, openapiConfig(im), n.caps, n.e.log)
			if err != nil {
				r.err = err
				return
			}
			r.regs, r.close = imp.Registrations(), func(context.Context) { imp.Close() }
		})
	}
	for j, im := range f.MCPImports {
		wg.Go(func() {
			r := &results[len(f.OpenAPIImports)+j]
			r.key, r.optional = fmt.Sprintf("mcp_import[%d] (%s)", j, im.Service), im.Optional
			imp, err := mcp.Import(ctx, n.mcpConfig(im), n.caps, n.e.log)
			if err != nil {
				r.err = err
				return
			}
			r.regs, r.close = imp.Registrations(), func(ctx context.Context) { _ = imp.Close(ctx) }
		})
	}
	wg.Wait()
	var failed error
	for _, r := range results {
		if r.close != nil {
			out.closers = append(out.closers, r.close)
			out.regs = append(out.regs, r.regs...)
			continue
		}
		if r.err == nil {
			continue
		}
		if r.optional {
			n.e.log.Warn("optional import failed; the node starts without it", "import", r.key, "err", r.err)
			continue
		}
		if failed == nil {
			failed = fmt.Errorf("%s: %w", r.key, r.err)
		}
	}
	if failed != nil {
		out.close()
		return nil, configErr(failed)
	}
	return out, nil
}

func openapiConfig(im nodeconfig.OpenAPIImport) openapi.ImportConfig {
	return openapi.ImportConfig{Service: im.Service, Prefix: im.PrefixOf(), Source: im.Source, BaseURL: im.BaseURL,
		Include: im.Include, Exclude: im.Exclude, Visibility: visibilityOf(im.Visibility), RequiredScopes: im.RequiredScopes,
		AllowAnonymous: im.AllowAnonymous, Timeout: time.Duration(im.Timeout), MaxConcurrent: im.MaxConcurrent,
		MaxResponseBytes: im.MaxResponseBytes, AllowLoopbackHTTP: im.AllowLoopbackHTTP,
		AllowQueryCredentials: im.AllowQueryCredentials, Version: Version}
}

func (n *node) mcpConfig(im nodeconfig.MCPImport) mcp.ImportConfig {
	return mcp.ImportConfig{Service: im.Service, Prefix: im.PrefixOf(), Transport: im.Transport, Command: im.Command,
		Env: im.Env, EnvFromCapability: im.EnvFromCapability, StateDir: n.dir, URL: im.URL,
		AllowLoopbackHTTP: im.AllowLoopbackHTTP, ProtocolVersion: im.ProtocolVersion, Queries: im.Queries,
		Include: im.Include, Exclude: im.Exclude, Visibility: visibilityOf(im.Visibility), RequiredScopes: im.RequiredScopes,
		ConnectTimeout: time.Duration(im.ConnectTimeout), Timeout: time.Duration(im.Timeout), MaxConcurrent: im.MaxConcurrent,
		MaxResultBytes: im.MaxResultBytes, Version: Version}
}
