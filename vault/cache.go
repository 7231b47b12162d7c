package vault

import (
	"container/list"
	"sync"
	"time"
)

// Cache defaults.
const (
	DefaultCacheTTL     = time.Hour
	DefaultCacheEntries = 64
)

// CacheConfig bounds the derivation cache. Zero fields take the defaults; a negative value of
// either disables caching.
type CacheConfig struct {
	TTL        time.Duration
	MaxEntries int
}

type cacheKey struct {
	path string // canonical
	kt   KeyType
}

type cacheEntry struct {
	key      cacheKey
	value    *ExtendedKey // the vault's own copy
	inserted time.Time
}

// cache is an LRU with a TTL counted from insertion; wiped entries never leak out.
type cache struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	off     bool
	now     func() time.Time
	entries map[cacheKey]*list.Element
	lru     *list.List // front = most recent
}

func newCache(cfg CacheConfig) *cache {
	c := &cache{ttl: cfg.TTL, max: cfg.MaxEntries, now: time.Now, entries: map[cacheKey]*list.Element{}, lru: list.New()}
	if c.ttl == 0 {
		c.ttl = DefaultCacheTTL
	}
	if c.max == 0 {
		c.max = DefaultCacheEntries
	}
	c.off = c.ttl < 0 || c.max < 0
	return c
}

// get returns a fresh copy of a live entry.
func (c *cache) get(k cacheKey) (*ExtendedKey, bool) {
	if c.off {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[k]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if c.now().Sub(e.inserted) > c.ttl {
		c.removeLocked(el)
		return nil, false
	}
	c.lru.MoveToFront(el)
	return cloneKey(e.value), true
}

// put stores a copy of v, replacing (and wiping) an old value or evicting the LRU entry.
func (c *cache) put(k cacheKey, v *ExtendedKey) {
	if c.off {
		return
	}
	own := cloneKey(v)
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[k]; ok {
		e := el.Value.(*cacheEntry)
		e.value.Wipe()
		e.value, e.inserted = own, c.now()
		c.lru.MoveToFront(el)
		return
	}
	for len(c.entries) >= c.max {
		c.removeLocked(c.lru.Back())
	}
	c.entries[k] = c.lru.PushFront(&cacheEntry{key: k, value: own, inserted: c.now()})
}

func (c *cache) removeLocked(el *list.Element) {
	e := el.Value.(*cacheEntry)
	e.value.Wipe()
	c.lru.Remove(el)
	delete(c.entries, e.key)
}

// clear wipes and drops every entry.
func (c *cache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.lru.Front(); el != nil; el = el.Next() {
		el.Value.(*cacheEntry).value.Wipe()
	}
	c.lru.Init()
	clear(c.entries)
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func cloneKey(k *ExtendedKey) *ExtendedKey {
	return &ExtendedKey{
		DerivedKey: DerivedKey{keyType: k.keyType, path: k.path, public: append([]byte(nil), k.public...), private: newSecret(k.private.bytes())},
		chain:      newSecret(k.chain.bytes()),
	}
}
