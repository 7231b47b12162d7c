/*
 * alknet_iroh.h: the C ABI of the alknet-iroh crate (normative; spec iroh.md §4).
 *
 * Calls that may wait take a token from the caller's never-reused counter and return
 * ALK_OK (result in *out), an error (also in *out, with a message in out->detail), or
 * ALK_PENDING: exactly one completion with that token is later returned by alk_wait.
 * Every handle received is the caller's to release exactly once (alk_release); a detail
 * message is released by alk_msg_take. Pointers passed in are used only during the call.
 */
#ifndef ALKNET_IROH_H
#define ALKNET_IROH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ALK_ABI_VERSION 1

typedef uint64_t alk_handle; /* 0 = none; bits 56-63: 1 endpoint 2 connection 3 stream 4 chunk 5 message */
typedef uint64_t alk_token;  /* never reused; UINT64_MAX = ALK_TOKEN_LOG */

#define ALK_TOKEN_LOG UINT64_MAX

typedef struct {
  alk_token token; int32_t status; uint32_t flags;  /* ALK_F_FIN 1, ALK_F_REMOTE 2 */
  uint64_t value;                     /* a handle, a byte count, or a stream/close code */
  const uint8_t *data; uint64_t len;  /* reads: the bytes of chunk `value` */
  alk_handle detail;                  /* 0 or a message: error text <= 512 B, close reason <= 256 B */
} alk_completion;

typedef struct { uint32_t relay_mode, max_bidi_streams, idle_timeout_ms, handshake_timeout_ms, max_handshakes,
                 backlog, max_conns, max_conns_per_ip /* UINT32_MAX = none */, stream_window, conn_window,
                 online_timeout_ms, flags; } alk_bind_opts;

typedef struct {
  uint8_t remote_id[32]; /* the peer's Ed25519 public key (EndpointId) */
  uint8_t alpn[255]; uint8_t alpn_len;
  uint32_t path;         /* ALK_PATH_* of the selected path */
} alk_conn_info_t;

typedef struct {
  uint64_t handles, tokens, chunk_bytes, endpoints;
  uint64_t refused_handshakes, refused_limit_total, refused_limit_ip, refused_backlog;
  uint64_t handshake_failed, log_dropped;
} alk_stats_t;

/* Statuses. */
#define ALK_OK 0
#define ALK_PENDING 1
#define ALK_E_ARG (-1)          /* the message names the argument */
#define ALK_E_HANDLE (-2)       /* stale, forged or wrong-type handle */
#define ALK_E_LIMIT (-3)
#define ALK_E_CANCELED (-4)     /* value = bytes written, for writes */
#define ALK_E_CLOSED (-5)       /* application close: value = code, ALK_F_REMOTE, detail = reason */
#define ALK_E_TIMEOUT (-6)
#define ALK_E_TRANSPORT (-7)
#define ALK_E_RESET (-8)        /* value = code */
#define ALK_E_STOPPED (-9)      /* value = code */
#define ALK_E_CONNECT (-10)
#define ALK_E_HANDSHAKE (-11)
#define ALK_E_ALPN (-12)
#define ALK_E_PIN (-13)
#define ALK_E_BIND (-14)
#define ALK_E_INTERNAL (-15)
#define ALK_E_SHUTDOWN (-16)
#define ALK_E_UNSUPPORTED (-17)

/* Completion flags. */
#define ALK_F_FIN 1
#define ALK_F_REMOTE 2

/* alk_bind_opts.relay_mode and .flags; alk_init flags. */
#define ALK_RELAY_DISABLED 0
#define ALK_RELAY_CUSTOM 1
#define ALK_RELAY_N0 2
#define ALK_BIND_DIAL_ONLY 1
#define ALK_INIT_FAULTS 1

/* alk_endpoint_addrs `which`; alk_conn_info.path. */
#define ALK_ADDRS_ADVERTISED 0
#define ALK_ADDRS_BOUND 1
#define ALK_PATH_UNKNOWN 0
#define ALK_PATH_DIRECT 1
#define ALK_PATH_RELAY 2

/* Process. */
uint32_t alk_abi_version(void);
const char *alk_iroh_version(void);
int32_t alk_init(uint32_t workers, uint32_t flags);
int32_t alk_wait(alk_completion *out, uint32_t cap, int64_t timeout_ms, uint32_t *n);
int32_t alk_wait_interrupt(void);
int32_t alk_cancel(alk_token t);
int32_t alk_release(alk_handle h);
int32_t alk_msg_take(alk_handle h, uint8_t *buf, uint64_t cap, uint64_t *len);
int32_t alk_stats(alk_stats_t *out);
int32_t alk_log_level(int32_t level); /* 0 off, 1 error, 2 warn, 3 info, 4 debug, 5 trace */
int32_t alk_log_take(uint8_t *buf, uint64_t cap, uint64_t *len, int32_t *level); /* level 0: empty */
int32_t alk_test_fault(alk_handle h, uint32_t kind); /* only with ALK_INIT_FAULTS: 1 panic here, 2 panic in a task,
                                                        3 lose endpoint h, 4 SIGPIPE write on a worker (completes token h) */

/* Endpoint. Lists are `\n`-separated UTF-8. */
int32_t alk_endpoint_bind(const alk_bind_opts *opts, const uint8_t key[32],
                          const uint8_t *alpns, uint64_t alpns_len, const uint8_t *binds, uint64_t binds_len,
                          const uint8_t *relays, uint64_t relays_len, const uint8_t *advertise, uint64_t advertise_len,
                          alk_token t, alk_completion *out);
int32_t alk_endpoint_id(alk_handle ep, uint8_t out[32]);
int32_t alk_endpoint_addrs(alk_handle ep, uint32_t which, uint8_t *buf, uint64_t cap, uint64_t *len, uint64_t *gen);
int32_t alk_endpoint_watch(alk_handle ep, uint64_t gen, alk_token t, alk_completion *out);
int32_t alk_endpoint_accept(alk_handle ep, alk_token t, alk_completion *out);
int32_t alk_endpoint_stop_accepting(alk_handle ep);
int32_t alk_endpoint_connect(alk_handle ep, const uint8_t id[32], const uint8_t *alpn, uint64_t alpn_len,
                             const uint8_t *relay, uint64_t relay_len, const uint8_t *addrs, uint64_t addrs_len,
                             uint32_t timeout_ms, alk_token t, alk_completion *out);
int32_t alk_endpoint_close(alk_handle ep, alk_token t, alk_completion *out);

/* Connection. */
int32_t alk_conn_info(alk_handle c, alk_conn_info_t *out);
int32_t alk_conn_open(alk_handle c, alk_token t, alk_completion *out);
int32_t alk_conn_accept(alk_handle c, alk_token t, alk_completion *out);
int32_t alk_conn_closed(alk_handle c, alk_token t, alk_completion *out);
int32_t alk_conn_close(alk_handle c, uint64_t code, const uint8_t *reason, uint64_t reason_len);

/* Stream. */
int32_t alk_stream_read(alk_handle s, uint64_t max, alk_handle release, alk_token t, alk_completion *out);
int32_t alk_stream_write(alk_handle s, const uint8_t *p, uint64_t n, uint32_t flags, alk_token t, alk_completion *out);
int32_t alk_stream_finish(alk_handle s);
int32_t alk_stream_reset(alk_handle s, uint64_t code);
int32_t alk_stream_stop(alk_handle s, uint64_t code);

#ifdef __cplusplus
}
#endif

#endif /* ALKNET_IROH_H */
