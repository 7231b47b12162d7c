package contestant

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"

	"github.com/quic-go/quic-go"

	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/core/tlsconf"
)

// Raw frames: a 4-byte length, then the body. Requests start with a kind byte: 'E' echo the
// rest, 'S' stream n×size (two uint32s) back and end with an empty frame.

func writeFrame(w io.Writer, b []byte) error {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

func readFrame(r io.Reader, buf []byte) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > 64<<20 {
		return nil, errors.New("frame too large")
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err := io.ReadFull(r, buf)
	return buf, err
}

func streamRequest(n, size int) []byte {
	b := []byte{'S', 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(n))
	binary.BigEndian.PutUint32(b[5:], uint32(size))
	return b
}

func serverCert() (tls.Certificate, error) {
	k, err := identity.Generate()
	if err != nil {
		return tls.Certificate{}, err
	}
	return tlsconf.SelfSigned(k)
}

// ---- quic-raw: a bare QUIC stream per call, the ceiling for alknet-quic.

func init() {
	register(Contestant{
		Name: "quic-raw", Limits: "quic-go defaults; MaxIncomingStreams=1024",
		Serve: serveQUICRaw,
		Dial: func(ctx context.Context, addr, _ string, _ Options) (Client, error) {
			c, err := quic.DialAddr(ctx, addr, clientTLS("bench/raw"), &quic.Config{})
			if err != nil {
				return nil, err
			}
			return &quicRawClient{c: c}, nil
		},
	})
}

type quicRawServer struct {
	ln   *quic.Listener
	wg   sync.WaitGroup
	addr string
}

func (s *quicRawServer) Addr() string { return s.addr }
func (s *quicRawServer) Pin() string  { return "" }
func (s *quicRawServer) Close() error { err := s.ln.Close(); s.wg.Wait(); return err }

func serveQUICRaw(addr string) (Server, error) {
	return serveQUICStreams(addr, "bench/raw", serveRawStream)
}

// serveQUICStreams listens on addr with a throwaway certificate and runs handle on every stream
// of every connection (quic-raw, quic-raw-mux).
func serveQUICStreams(addr, alpn string, handle func(*quic.Stream)) (Server, error) {
	cert, err := serverCert()
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13, NextProtos: []string{alpn}}
	ln, err := quic.ListenAddr(addr, tc, &quic.Config{MaxIncomingStreams: 1024})
	if err != nil {
		return nil, err
	}
	s := &quicRawServer{ln: ln, addr: ln.Addr().String()}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			go func() {
				for {
					st, err := c.AcceptStream(context.Background())
					if err != nil {
						return
					}
					go handle(st)
				}
			}()
		}
	}()
	return s, nil
}

func serveRawStream(st *quic.Stream) {
	defer st.Close()
	req, err := readFrame(st, nil)
	if err != nil || len(req) == 0 {
		return
	}
	switch req[0] {
	case 'E':
		_ = writeFrame(st, req[1:])
	case 'S':
		if len(req) < 9 {
			return
		}
		n, size := binary.BigEndian.Uint32(req[1:]), binary.BigEndian.Uint32(req[5:])
		bw := bufio.NewWriterSize(st, 64<<10) // buffered writes, as the report's target names
		item := make([]byte, size)
		for range n {
			if writeFrame(bw, item) != nil {
				return
			}
		}
		_ = writeFrame(bw, nil)
		_ = bw.Flush()
	}
}

type quicRawClient struct{ c *quic.Conn }

func (c *quicRawClient) Unary(ctx context.Context, payload []byte) ([]byte, error) {
	st, err := c.c.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	defer st.CancelRead(0)
	if err := writeFrame(st, append([]byte{'E'}, payload...)); err != nil {
		return nil, err
	}
	_ = st.Close()
	return readFrame(st, nil)
}

func (c *quicRawClient) Stream(ctx context.Context, n, size int, fn func([]byte)) error {
	st, err := c.c.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	defer st.CancelRead(0)
	if err := writeFrame(st, streamRequest(n, size)); err != nil {
		return err
	}
	_ = st.Close()
	return readItems(st, fn)
}

// readItems reads a raw stream's item frames until the empty one.
func readItems(r io.Reader, fn func([]byte)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	for {
		var err error
		if buf, err = readFrame(br, buf); err != nil {
			return err
		}
		if len(buf) == 0 {
			return nil
		}
		fn(buf)
	}
}

// StartReady starts cmd and reads its first line, "ready ADDR PIN PID"; on any other answer
// the process is killed.
func StartReady(cmd *exec.Cmd) (addr, pin string, pid int, stdin io.WriteCloser, err error) {
	stdin, _ = cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return "", "", 0, nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 4 || f[0] != "ready" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return "", "", 0, nil, fmt.Errorf("%s did not start: %q %v", cmd.Path, line, err)
	}
	pid, _ = strconv.Atoi(f[3])
	return f[1], f[2], pid, stdin, nil
}

func (c *quicRawClient) Close() error { return c.c.CloseWithError(0, "") }

// ---- tls-raw: one TLS connection multiplexing requests by id, the ceiling for alknet-tcp.

func init() {
	register(Contestant{
		Name: "tls-raw", Limits: "none",
		Serve: serveTLSRaw,
		Dial: func(ctx context.Context, addr, _ string, _ Options) (Client, error) {
			d := tls.Dialer{Config: clientTLS("bench/raw")}
			nc, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			return newMuxClient(nc), nil
		},
	})
}

type tlsRawServer struct {
	ln   net.Listener
	wg   sync.WaitGroup
	addr string
}

func (s *tlsRawServer) Addr() string { return s.addr }
func (s *tlsRawServer) Pin() string  { return "" }
func (s *tlsRawServer) Close() error { err := s.ln.Close(); s.wg.Wait(); return err }

func serveTLSRaw(addr string) (Server, error) {
	cert, err := serverCert()
	if err != nil {
		return nil, err
	}
	ln, err := tls.Listen("tcp", addr, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13, NextProtos: []string{"bench/raw"}})
	if err != nil {
		return nil, err
	}
	s := &tlsRawServer{ln: ln, addr: ln.Addr().String()}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveMux(c)
		}
	}()
	return s, nil
}

// serveMux answers id-tagged frames, [id uint32][body], read from one TLS connection or QUIC
// stream; requests are handled concurrently and answered on the same stream.
func serveMux(c io.ReadWriteCloser) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 64<<10)
	bw := bufio.NewWriterSize(c, 64<<10)
	var mu sync.Mutex
	send := func(id uint32, body []byte, flush bool) error {
		mu.Lock()
		defer mu.Unlock()
		frame := make([]byte, 4+len(body))
		binary.BigEndian.PutUint32(frame, id)
		copy(frame[4:], body)
		if err := writeFrame(bw, frame); err != nil {
			return err
		}
		if flush {
			return bw.Flush()
		}
		return nil
	}
	for {
		req, err := readFrame(br, nil)
		if err != nil || len(req) < 5 {
			return
		}
		id, kind, rest := binary.BigEndian.Uint32(req), req[4], req[5:]
		go func() {
			switch kind {
			case 'E':
				_ = send(id, rest, true)
			case 'S':
				if len(rest) < 8 {
					return
				}
				n, size := binary.BigEndian.Uint32(rest), binary.BigEndian.Uint32(rest[4:])
				item := make([]byte, size)
				for range n {
					if send(id, item, false) != nil {
						return
					}
				}
				_ = send(id, nil, true)
			}
		}()
	}
}

// muxClient multiplexes requests by id over one TLS connection or QUIC stream (tls-raw,
// quic-raw-mux).
type muxClient struct {
	c       io.ReadWriteCloser
	wmu     sync.Mutex
	bw      *bufio.Writer
	mu      sync.Mutex
	next    uint32
	waiting map[uint32]chan []byte
}

func newMuxClient(rw io.ReadWriteCloser) *muxClient {
	c := &muxClient{c: rw, bw: bufio.NewWriter(rw), waiting: map[uint32]chan []byte{}}
	go c.readLoop()
	return c
}

func (c *muxClient) readLoop() {
	br := bufio.NewReaderSize(c.c, 64<<10)
	for {
		f, err := readFrame(br, nil)
		if err != nil || len(f) < 4 {
			c.mu.Lock()
			for _, ch := range c.waiting {
				close(ch)
			}
			c.waiting = map[uint32]chan []byte{}
			c.mu.Unlock()
			return
		}
		id := binary.BigEndian.Uint32(f)
		c.mu.Lock()
		ch := c.waiting[id]
		c.mu.Unlock()
		if ch != nil {
			ch <- f[4:]
		}
	}
}

func (c *muxClient) start(body []byte, buffer int) (uint32, chan []byte, error) {
	c.mu.Lock()
	c.next++
	id := c.next
	ch := make(chan []byte, buffer)
	c.waiting[id] = ch
	c.mu.Unlock()
	frame := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(frame, id)
	copy(frame[4:], body)
	c.wmu.Lock()
	err := writeFrame(c.bw, frame)
	if err == nil {
		err = c.bw.Flush()
	}
	c.wmu.Unlock()
	return id, ch, err
}

func (c *muxClient) done(id uint32) {
	c.mu.Lock()
	delete(c.waiting, id)
	c.mu.Unlock()
}

func (c *muxClient) Unary(ctx context.Context, payload []byte) ([]byte, error) {
	id, ch, err := c.start(append([]byte{'E'}, payload...), 1)
	defer c.done(id)
	if err != nil {
		return nil, err
	}
	select {
	case b, ok := <-ch:
		if !ok {
			return nil, io.ErrUnexpectedEOF
		}
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *muxClient) Stream(ctx context.Context, n, size int, fn func([]byte)) error {
	id, ch, err := c.start(streamRequest(n, size), 256)
	defer c.done(id)
	if err != nil {
		return err
	}
	for {
		select {
		case b, ok := <-ch:
			if !ok {
				return io.ErrUnexpectedEOF
			}
			if len(b) == 0 {
				return nil
			}
			fn(b)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *muxClient) Close() error { return c.c.Close() }
