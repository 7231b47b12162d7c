// Package config holds a node's static configuration (changes need a restart), its
// connection limits, and the dynamic part (peers, API keys, auth rate limits) that a Store
// swaps atomically on reload. The file format belongs to the CLI; this package only validates.
//
// See also: auth (Policy, RateLimits), endpoint (which applies Limits), host (which takes them all).
package config

import (
	"errors"
	"fmt"
	"time"
)

// Limits bound what one node accepts. A zero field takes its default; a negative one
// means unlimited/off where noted.
type Limits struct {
	MaxConnections      int           // live connections in total; default 10 000; negative: unlimited
	MaxConnectionsPerIP int           // live connections per IP key; default 100; negative: unlimited
	HandshakeTimeout    time.Duration // TCP accept → handshake done; QUIC HandshakeIdleTimeout; default 10 s
	IdleTimeout         time.Duration // QUIC MaxIdleTimeout; default 30 s
	KeepAlivePeriod     time.Duration // QUIC and TCP keep-alive; default 10 s; negative: off
	MaxIncomingStreams  int64         // per QUIC connection; default 100
	// SingleStreamIdleTimeout closes a TCP+TLS connection with nothing in flight and no byte
	// received for this long (IdleTimeout is QUIC's); default 60 s; negative: off.
	SingleStreamIdleTimeout time.Duration
	// WriteTimeout fails a write that makes no progress for this long, resetting the QUIC
	// stream or closing the TCP+TLS connection; default 30 s; negative: off.
	WriteTimeout time.Duration
	// RetryAbove: with more QUIC handshakes in progress than this, new connection attempts
	// must first prove their source address with a Retry (RFC 9000 §8.1.2), so spoofed-source
	// floods cannot spend per-IP budgets; default 64; negative: always require a Retry.
	RetryAbove int
}

// Defaults of Limits.
const (
	DefaultMaxConnections      = 10000
	DefaultMaxConnectionsPerIP = 100
	DefaultHandshakeTimeout    = 10 * time.Second
	DefaultIdleTimeout         = 30 * time.Second
	DefaultKeepAlivePeriod     = 10 * time.Second
	DefaultMaxIncomingStreams  = 100
	DefaultDrainTimeout        = 2 * time.Second
	DefaultSingleStreamIdle    = 60 * time.Second
	DefaultWriteTimeout        = 30 * time.Second
	DefaultRetryAbove          = 64
)

// WithDefaults fills zero fields.
func (l Limits) WithDefaults() Limits {
	if l.MaxConnections == 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	if l.MaxConnectionsPerIP == 0 {
		l.MaxConnectionsPerIP = DefaultMaxConnectionsPerIP
	}
	if l.HandshakeTimeout == 0 {
		l.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.KeepAlivePeriod == 0 {
		l.KeepAlivePeriod = DefaultKeepAlivePeriod
	}
	if l.MaxIncomingStreams == 0 {
		l.MaxIncomingStreams = DefaultMaxIncomingStreams
	}
	if l.SingleStreamIdleTimeout == 0 {
		l.SingleStreamIdleTimeout = DefaultSingleStreamIdle
	}
	if l.WriteTimeout == 0 {
		l.WriteTimeout = DefaultWriteTimeout
	}
	if l.RetryAbove == 0 {
		l.RetryAbove = DefaultRetryAbove
	}
	return l
}

// Validate checks limits after defaults; each problem names its field.
func (l Limits) Validate() error {
	l = l.WithDefaults()
	var errs []error
	if l.HandshakeTimeout < 0 {
		errs = append(errs, errors.New("limits.handshake_timeout: must not be negative"))
	}
	if l.IdleTimeout < 0 {
		errs = append(errs, errors.New("limits.idle_timeout: must not be negative"))
	}
	if l.MaxIncomingStreams < 0 {
		errs = append(errs, errors.New("limits.max_incoming_streams: must not be negative"))
	}
	if l.KeepAlivePeriod > 0 && l.KeepAlivePeriod >= l.IdleTimeout {
		errs = append(errs, fmt.Errorf("limits.keep_alive_period: %v must be less than idle_timeout %v", l.KeepAlivePeriod, l.IdleTimeout))
	}
	return errors.Join(errs...)
}

// ConnTimeouts returns the inactivity limits the endpoint gives a connection (negative: off).
func (l Limits) ConnTimeouts(multiStream bool) (idle, write time.Duration) {
	l = l.WithDefaults()
	idle, write = max(l.SingleStreamIdleTimeout, 0), max(l.WriteTimeout, 0)
	if multiStream {
		idle = 0 // QUIC: IdleTimeout, enforced by the transport
	}
	return idle, write
}
