package call_test

import (
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// lossyProxy relays UDP datagrams between clients and one upstream address on loopback,
// dropping, delaying (hence reordering) and duplicating them with a seeded generator: a
// lossy network for QUIC in a test.
type lossyProxy struct {
	ln       *net.UDPConn
	upstream *net.UDPAddr
	loss     float64       // probability a datagram is dropped
	dup      float64       // probability a datagram is sent twice
	jitter   time.Duration // each datagram waits a uniform delay in [0, jitter)

	mu      sync.Mutex
	rng     *rand.Rand
	clients map[string]*net.UDPConn // client address → its upstream socket
	closed  bool
	wg      sync.WaitGroup // relay loops and pending deliveries

	dropped, sent int
}

func newLossyProxy(upstream string, seed uint64, loss, dup float64, jitter time.Duration) (*lossyProxy, error) {
	ua, err := net.ResolveUDPAddr("udp", upstream)
	if err != nil {
		return nil, err
	}
	ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	p := &lossyProxy{ln: ln, upstream: ua, loss: loss, dup: dup, jitter: jitter,
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), clients: map[string]*net.UDPConn{}}
	p.wg.Add(1)
	go p.fromClients()
	return p, nil
}

// Addr is where clients send.
func (p *lossyProxy) Addr() string { return p.ln.LocalAddr().String() }

// deliver sends b through write after the proxy's random fate.
func (p *lossyProxy) deliver(b []byte, write func([]byte)) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	if p.rng.Float64() < p.loss {
		p.dropped++
		p.mu.Unlock()
		return
	}
	copies := 1
	if p.rng.Float64() < p.dup {
		copies = 2
	}
	delays := make([]time.Duration, copies)
	for i := range delays {
		delays[i] = time.Duration(p.rng.Int64N(int64(p.jitter) + 1))
	}
	p.sent += copies
	p.wg.Add(copies)
	p.mu.Unlock()
	for _, d := range delays {
		time.AfterFunc(d, func() {
			defer p.wg.Done()
			write(b)
		})
	}
}

func (p *lossyProxy) fromClients() {
	defer p.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := p.ln.ReadFromUDP(buf)
		if err != nil {
			return
		}
		up, err := p.upstreamFor(from)
		if err != nil {
			continue
		}
		b := append([]byte(nil), buf[:n]...)
		p.deliver(b, func(b []byte) { _, _ = up.Write(b) })
	}
}

// upstreamFor returns the socket that carries from's datagrams to the upstream (one per
// client, so the upstream sees one address per client), starting its return relay.
func (p *lossyProxy) upstreamFor(from *net.UDPAddr) (*net.UDPConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if up := p.clients[from.String()]; up != nil {
		return up, nil
	}
	if p.closed {
		return nil, net.ErrClosed
	}
	up, err := net.DialUDP("udp", nil, p.upstream)
	if err != nil {
		return nil, err
	}
	p.clients[from.String()] = up
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, err := up.Read(buf)
			if err != nil {
				return
			}
			b := append([]byte(nil), buf[:n]...)
			p.deliver(b, func(b []byte) { _, _ = p.ln.WriteToUDP(b, from) })
		}
	}()
	return up, nil
}

// blackhole drops every datagram from now on, both ways: the peers vanish for each other.
func (p *lossyProxy) blackhole() {
	p.mu.Lock()
	p.loss = 1
	p.mu.Unlock()
}

// Close stops relaying and waits for every goroutine and pending delivery.
func (p *lossyProxy) Close() (dropped, sent int) {
	p.mu.Lock()
	p.closed = true
	_ = p.ln.Close()
	for _, up := range p.clients {
		_ = up.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return p.dropped, p.sent
}
