package openapi

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"sync"

	"github.com/alkdev/alknet/adapters/catalog"
)

// maxCachedDocuments bounds the documents a Publisher keeps (docs/http.md §4).
const maxCachedDocuments = 64

// Publisher serves each caller the document of what it may call, cached by catalogue
// generation, the caller's visible operations and the surface.
type Publisher struct {
	cat       catalog.Catalog
	names     *catalog.Names
	serverURL func(surface string) string
	log       *slog.Logger

	mu    sync.Mutex
	cache map[[32]byte][]byte
	order [][32]byte
}

// NewPublisher returns a Publisher; serverURL gives the servers entry of a surface.
func NewPublisher(cat catalog.Catalog, names *catalog.Names, serverURL func(surface string) string, log *slog.Logger) *Publisher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Publisher{cat: cat, names: names, serverURL: serverURL, log: log, cache: map[[32]byte][]byte{}}
}

// Document returns the caller's document on surface ("tls" or "loopback").
func (p *Publisher) Document(ctx context.Context, caller catalog.Caller, surface string) ([]byte, error) {
	gen := p.cat.Generation()
	specs, err := p.cat.Visible(ctx, caller.Identity)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write([]byte(surface + "\x00"))
	h.Write([]byte{byte(gen >> 56), byte(gen >> 48), byte(gen >> 40), byte(gen >> 32), byte(gen >> 24), byte(gen >> 16), byte(gen >> 8), byte(gen)})
	for _, s := range specs {
		h.Write([]byte(s.Name + "\x00"))
	}
	var key [32]byte
	h.Sum(key[:0])
	p.mu.Lock()
	doc, ok := p.cache[key]
	p.mu.Unlock()
	if ok {
		return doc, nil
	}
	names, err := p.names.Map(ctx)
	if err != nil {
		return nil, err
	}
	n := p.cat.Node()
	doc, err = Document(specs, names, DocOptions{ServerURL: p.serverURL(surface), Fingerprint: n.Fingerprint,
		Version: n.Version, MTLS: surface == "tls", Logger: p.log})
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.cache[key]; !ok {
		p.cache[key] = doc
		p.order = append(p.order, key)
		if len(p.order) > maxCachedDocuments {
			delete(p.cache, p.order[0])
			p.order = p.order[1:]
		}
	}
	return doc, nil
}
