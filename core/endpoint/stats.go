package endpoint

// AnonymousPeer is the Stats.ByPeer key of connections with no identity from their certificate.
const AnonymousPeer = "anonymous"

// Stats is a snapshot of the live connections (status pages and metrics).
type Stats struct {
	Connections int
	ByTransport map[string]int // "quic", "tcp+tls", …
	// ByPeer counts connections by the peer their certificate identified (a configured peer_id,
	// so the keys are bounded by the config), else AnonymousPeer. Per-request tokens do not
	// name a connection's peer.
	ByPeer map[string]int
}

// Stats returns a snapshot of the live connections. It takes the endpoint's lock for a copy
// of the connection set only; the counting happens after.
func (e *Endpoint) Stats() Stats {
	e.mu.Lock()
	live := make([]*tracked, 0, len(e.live))
	for t := range e.live {
		live = append(live, t)
	}
	e.mu.Unlock()
	s := Stats{Connections: len(live), ByTransport: map[string]int{}, ByPeer: map[string]int{}}
	for _, t := range live {
		s.ByTransport[string(t.Transport())]++
		peer := AnonymousPeer
		if id, _, ok := t.heldIdentity(); ok && id.ID != "" {
			peer = id.ID
		}
		s.ByPeer[peer]++
	}
	return s
}
