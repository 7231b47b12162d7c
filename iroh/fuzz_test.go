//go:build cgo && !noiroh

package iroh

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// FuzzABI feeds forged handles, codes and byte lists to every ABI entry point: each answers
// HANDLE or ARG (or, for a bind whose lists happen to be valid, binds and is closed), and the
// process survives (spec iroh.md §4, §12.4).
func FuzzABI(f *testing.F) {
	f.Add(uint64(0), uint64(1), []byte("alknet/x\n"), []byte("127.0.0.1:0"))
	f.Add(uint64(3)<<56|5, uint64(1)<<62, []byte{0xff, 0xfe}, []byte("[::1]:0\n127.0.0.1:0\n10.0.0.1:1"))
	f.Add(uint64(2)<<56|1, uint64(0), bytes.Repeat([]byte("a"), 300), []byte("not an address"))
	f.Fuzz(func(t *testing.T, h, code uint64, list, addrs []byte) {
		if err := thePoller.acquire(); err != nil {
			t.Fatal(err)
		}
		defer thePoller.releaseUser()
		forged := func(name string, st int32) {
			t.Helper()
			if st != stHandle && st != stArg {
				t.Fatalf("%s(%#x): status %d, want HANDLE or ARG", name, h, st)
			}
		}
		oneShot := func(name string, call func(tok uint64, out *completion) int32) {
			t.Helper()
			cp, _, o := issue(call)
			if o != nil {
				t.Fatalf("%s(%#x): pending on a forged handle", name, h)
			}
			cMessage(cp.detail)
			forged(name, cp.status)
		}
		if h>>56 == 0 || h>>56 > 5 || h&(1<<56-1) > 1<<40 { // never a handle this process issued
			forged("release", cRelease(h))
			oneShot("read", func(tok uint64, out *completion) int32 { return cRead(h, 1+int(code%maxIO), 0, tok, out) })
			oneShot("write", func(tok uint64, out *completion) int32 {
				return cWrite(h, list[:min(len(list), maxIO)], code&1 == 1, tok, out)
			})
			oneShot("open", func(tok uint64, out *completion) int32 { return cConnOp(connOpen, h, tok, out) })
			oneShot("accept", func(tok uint64, out *completion) int32 { return cAccept(h, tok, out) })
			oneShot("connect", func(tok uint64, out *completion) int32 {
				return cConnect(h, bytes.Repeat([]byte{1}, 32), list, nil, addrs, 100, tok, out)
			})
			forged("conn_close", cConnClose(h, code, list[:min(len(list), 256)]))
			forged("stream_stop", cStop(h, code))
			if _, st := cConnInfo(h); st != stHandle && st != stArg {
				t.Fatalf("conn_info: %d", st)
			}
			if cMessage(h) != "" {
				t.Fatal("a forged message handle returned text")
			}
		}
		// A bind whose lists come from the fuzzer (relay disabled, custom without URLs, or invalid:
		// never the n0 relays): ARG, or a real endpoint that is closed again.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		seed := bytes.Repeat([]byte{7}, 32)
		cp, tok, o := issue(func(t uint64, out *completion) int32 {
			return cBind(bindOpts{relayMode: []uint32{0, 1, 3}[code%3], flags: uint32(code>>8) & 3}, seed, list, addrs, nil, nil, t, out)
		})
		if o != nil {
			cp = await(ctx, tok, o)
		}
		cMessage(cp.detail)
		switch cp.status {
		case stOK:
			closeEndpoint(cp.value)
		case stArg, stBind:
		default:
			t.Fatalf("bind: status %d", cp.status)
		}
	})
}
