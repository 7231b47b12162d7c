//go:build cgo && !noiroh

package iroh

/*
#cgo CFLAGS: -I${SRCDIR}/ffi/include
#cgo linux,amd64 LDFLAGS: ${SRCDIR}/ffi/lib/linux_amd64/libalknet_iroh.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
#cgo linux,arm64 LDFLAGS: ${SRCDIR}/ffi/lib/linux_arm64/libalknet_iroh.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
#cgo darwin,arm64 LDFLAGS: ${SRCDIR}/ffi/lib/darwin_arm64/libalknet_iroh.a -framework CoreFoundation -framework Security -framework SystemConfiguration -liconv -lc -lm
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include "alknet_iroh.h"

// The installed handler of sig (0 when sigaction fails), for the test that Go's handlers
// survive a bind.
static uintptr_t alk_sighandler(int sig) {
	struct sigaction sa;
	if (sigaction(sig, NULL, &sa) != 0) return 0;
	return (uintptr_t)sa.sa_sigaction;
}
*/
import "C"

import (
	"unsafe"
)

// The only file that imports "C": thin wrappers that turn Go values into the ABI's arguments.
// Go memory passed here holds no Go pointers and is used by Rust only during the call.

const (
	stOK          = int32(C.ALK_OK)
	stPending     = int32(C.ALK_PENDING)
	stArg         = int32(C.ALK_E_ARG)
	stHandle      = int32(C.ALK_E_HANDLE)
	stLimit       = int32(C.ALK_E_LIMIT)
	stCanceled    = int32(C.ALK_E_CANCELED)
	stClosed      = int32(C.ALK_E_CLOSED)
	stTimeout     = int32(C.ALK_E_TIMEOUT)
	stTransport   = int32(C.ALK_E_TRANSPORT)
	stReset       = int32(C.ALK_E_RESET)
	stStopped     = int32(C.ALK_E_STOPPED)
	stConnect     = int32(C.ALK_E_CONNECT)
	stHandshake   = int32(C.ALK_E_HANDSHAKE)
	stALPN        = int32(C.ALK_E_ALPN)
	stPin         = int32(C.ALK_E_PIN)
	stBind        = int32(C.ALK_E_BIND)
	stInternal    = int32(C.ALK_E_INTERNAL)
	stShutdown    = int32(C.ALK_E_SHUTDOWN)
	stUnsupported = int32(C.ALK_E_UNSUPPORTED)

	flagFIN    = uint32(C.ALK_F_FIN)
	flagRemote = uint32(C.ALK_F_REMOTE)

	tokenLog   = uint64(C.ALK_TOKEN_LOG)
	abiVersion = uint32(C.ALK_ABI_VERSION)
	maxIO      = 64 << 10
	waitBatch  = 256
	pathRelay  = uint32(C.ALK_PATH_RELAY)
	pathDirect = uint32(C.ALK_PATH_DIRECT)
)

// completion is one alk_completion, copied into Go memory.
type completion struct {
	token  uint64
	status int32
	flags  uint32
	value  uint64
	data   unsafe.Pointer // C memory of chunk `value`, valid until the chunk is released
	n      uint64
	detail uint64
}

func fromC(c *C.alk_completion) completion {
	return completion{token: uint64(c.token), status: int32(c.status), flags: uint32(c.flags), value: uint64(c.value),
		data: unsafe.Pointer(c.data), n: uint64(c.len), detail: uint64(c.detail)}
}

// ptr returns the address of b's first byte (nil for an empty slice) and its length.
func ptr(b []byte) (*C.uint8_t, C.uint64_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0])), C.uint64_t(len(b))
}

func cABIVersion() uint32  { return uint32(C.alk_abi_version()) }
func cIrohVersion() string { return C.GoString(C.alk_iroh_version()) }
func cInit(workers, flags uint32) int32 {
	return int32(C.alk_init(C.uint32_t(workers), C.uint32_t(flags)))
}

// cWait blocks until completions arrive (or an interrupt) and copies them into out.
func cWait(buf *[waitBatch]C.alk_completion, out []completion) []completion {
	var n C.uint32_t
	if C.alk_wait(&buf[0], waitBatch, -1, &n) != C.ALK_OK {
		return out
	}
	for i := range int(n) {
		out = append(out, fromC(&buf[i]))
	}
	return out
}

func cInterrupt()             { C.alk_wait_interrupt() }
func cCancel(t uint64)        { C.alk_cancel(C.alk_token(t)) }
func cRelease(h uint64) int32 { return int32(C.alk_release(C.alk_handle(h))) }

// cMessage takes (and frees) a detail message.
func cMessage(h uint64) string {
	if h == 0 {
		return ""
	}
	var buf [512]byte
	var n C.uint64_t
	if C.alk_msg_take(C.alk_handle(h), (*C.uint8_t)(unsafe.Pointer(&buf[0])), C.uint64_t(len(buf)), &n) != C.ALK_OK {
		return ""
	}
	return string(buf[:n])
}

func cStats() Stats {
	var s C.alk_stats_t
	C.alk_stats(&s)
	return Stats{Handles: uint64(s.handles), Tokens: uint64(s.tokens), ChunkBytes: uint64(s.chunk_bytes),
		Endpoints: uint64(s.endpoints), RefusedHandshakes: uint64(s.refused_handshakes),
		RefusedLimitTotal: uint64(s.refused_limit_total), RefusedLimitIP: uint64(s.refused_limit_ip),
		RefusedBacklog: uint64(s.refused_backlog), HandshakeFailed: uint64(s.handshake_failed),
		LogDropped: uint64(s.log_dropped)}
}

func cLogLevel(l int32) int32 { return int32(C.alk_log_level(C.int32_t(l))) }

// cLogTake takes one log entry; level 0 means the ring is empty.
func cLogTake(buf []byte) (string, int32) {
	var n C.uint64_t
	var level C.int32_t
	C.alk_log_take((*C.uint8_t)(unsafe.Pointer(&buf[0])), C.uint64_t(len(buf)), &n, &level)
	return string(buf[:n]), int32(level)
}

func cSigHandler(sig int) uintptr { return uintptr(C.alk_sighandler(C.int(sig))) }

func cTestFault(h uint64, kind uint32) int32 {
	return int32(C.alk_test_fault(C.alk_handle(h), C.uint32_t(kind)))
}

type bindOpts struct {
	relayMode, maxBidi, idleMS, handshakeMS, maxHandshakes, backlog, maxConns, maxConnsPerIP uint32
	streamWindow, connWindow, onlineMS, flags                                                uint32
}

func cBind(o bindOpts, key []byte, alpns, binds, relays, advertise []byte, t uint64, out *completion) int32 {
	co := C.alk_bind_opts{relay_mode: C.uint32_t(o.relayMode), max_bidi_streams: C.uint32_t(o.maxBidi),
		idle_timeout_ms: C.uint32_t(o.idleMS), handshake_timeout_ms: C.uint32_t(o.handshakeMS),
		max_handshakes: C.uint32_t(o.maxHandshakes), backlog: C.uint32_t(o.backlog), max_conns: C.uint32_t(o.maxConns),
		max_conns_per_ip: C.uint32_t(o.maxConnsPerIP), stream_window: C.uint32_t(o.streamWindow),
		conn_window: C.uint32_t(o.connWindow), online_timeout_ms: C.uint32_t(o.onlineMS), flags: C.uint32_t(o.flags)}
	var c C.alk_completion
	kp, _ := ptr(key)
	ap, an := ptr(alpns)
	bp, bn := ptr(binds)
	rp, rn := ptr(relays)
	vp, vn := ptr(advertise)
	st := int32(C.alk_endpoint_bind(&co, kp, ap, an, bp, bn, rp, rn, vp, vn, C.alk_token(t), &c))
	*out = fromC(&c)
	return st
}

func cEndpointID(h uint64) ([32]byte, int32) {
	var id [32]byte
	st := int32(C.alk_endpoint_id(C.alk_handle(h), (*C.uint8_t)(unsafe.Pointer(&id[0]))))
	return id, st
}

// cAddrs returns the endpoint's address lines and their generation.
func cAddrs(h uint64, which uint32) (string, uint64, int32) {
	buf := make([]byte, 2048)
	for {
		var n, gen C.uint64_t
		st := int32(C.alk_endpoint_addrs(C.alk_handle(h), C.uint32_t(which), (*C.uint8_t)(unsafe.Pointer(&buf[0])), C.uint64_t(len(buf)), &n, &gen))
		if st == stLimit && int(n) > len(buf) && n < 1<<20 {
			buf = make([]byte, n)
			continue
		}
		if st != stOK {
			return "", 0, st
		}
		return string(buf[:n]), uint64(gen), st
	}
}

func cWatch(h, gen, t uint64, out *completion) int32 {
	var c C.alk_completion
	st := int32(C.alk_endpoint_watch(C.alk_handle(h), C.uint64_t(gen), C.alk_token(t), &c))
	*out = fromC(&c)
	return st
}

func cAccept(h, t uint64, out *completion) int32 {
	var c C.alk_completion
	st := int32(C.alk_endpoint_accept(C.alk_handle(h), C.alk_token(t), &c))
	*out = fromC(&c)
	return st
}

func cStopAccepting(h uint64) { C.alk_endpoint_stop_accepting(C.alk_handle(h)) }

func cConnect(h uint64, id []byte, alpn, relay, addrs []byte, timeoutMS uint32, t uint64, out *completion) int32 {
	var c C.alk_completion
	ip, _ := ptr(id)
	ap, an := ptr(alpn)
	rp, rn := ptr(relay)
	dp, dn := ptr(addrs)
	st := int32(C.alk_endpoint_connect(C.alk_handle(h), ip, ap, an, rp, rn, dp, dn, C.uint32_t(timeoutMS), C.alk_token(t), &c))
	*out = fromC(&c)
	return st
}

func cEndpointClose(h, t uint64, out *completion) int32 {
	var c C.alk_completion
	st := int32(C.alk_endpoint_close(C.alk_handle(h), C.alk_token(t), &c))
	*out = fromC(&c)
	return st
}

type connInfo struct {
	remote [32]byte
	alpn   string
	path   uint32
}

func cConnInfo(h uint64) (connInfo, int32) {
	var ci C.alk_conn_info_t
	st := int32(C.alk_conn_info(C.alk_handle(h), &ci))
	var out connInfo
	if st == stOK {
		out.remote = *(*[32]byte)(unsafe.Pointer(&ci.remote_id[0]))
		out.alpn = C.GoStringN((*C.char)(unsafe.Pointer(&ci.alpn[0])), C.int(ci.alpn_len))
		out.path = uint32(ci.path)
	}
	return out, st
}

func cConnOp(op int, h, t uint64, out *completion) int32 {
	var c C.alk_completion
	var st C.int32_t
	switch op {
	case connOpen:
		st = C.alk_conn_open(C.alk_handle(h), C.alk_token(t), &c)
	case connAccept:
		st = C.alk_conn_accept(C.alk_handle(h), C.alk_token(t), &c)
	default:
		st = C.alk_conn_closed(C.alk_handle(h), C.alk_token(t), &c)
	}
	*out = fromC(&c)
	return int32(st)
}

const (
	connOpen = iota
	connAccept
	connClosedWatch
)

func cConnClose(h, code uint64, reason []byte) int32 {
	rp, rn := ptr(reason)
	return int32(C.alk_conn_close(C.alk_handle(h), C.uint64_t(code), rp, rn))
}

func cRead(h uint64, max int, release, t uint64, out *completion) int32 {
	var c C.alk_completion
	st := int32(C.alk_stream_read(C.alk_handle(h), C.uint64_t(max), C.alk_handle(release), C.alk_token(t), &c))
	*out = fromC(&c)
	return st
}

func cWrite(h uint64, p []byte, fin bool, t uint64, out *completion) int32 {
	var c C.alk_completion
	var flags C.uint32_t
	if fin {
		flags = C.ALK_F_FIN
	}
	dp, dn := ptr(p)
	st := int32(C.alk_stream_write(C.alk_handle(h), dp, dn, flags, C.alk_token(t), &c))
	*out = fromC(&c)
	return st
}

func cFinish(h uint64) int32 { return int32(C.alk_stream_finish(C.alk_handle(h))) }
func cReset(h, code uint64) int32 {
	return int32(C.alk_stream_reset(C.alk_handle(h), C.uint64_t(code)))
}
func cStop(h, code uint64) int32     { return int32(C.alk_stream_stop(C.alk_handle(h), C.uint64_t(code))) }
func chunkBytes(c completion) []byte { return unsafe.Slice((*byte)(c.data), int(c.n)) }

// cBatch is the poller's completion array, in Go memory (it holds no Go pointers).
type cBatch struct{ b [waitBatch]C.alk_completion }
