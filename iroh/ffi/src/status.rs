//! Status codes, flags and limits of the C ABI (include/alknet_iroh.h).

pub const ALK_ABI_VERSION: u32 = 1;
pub const ALK_TOKEN_LOG: u64 = u64::MAX;

pub const ALK_OK: i32 = 0;
pub const ALK_PENDING: i32 = 1;
pub const ALK_E_ARG: i32 = -1;
pub const ALK_E_HANDLE: i32 = -2;
pub const ALK_E_LIMIT: i32 = -3;
pub const ALK_E_CANCELED: i32 = -4;
pub const ALK_E_CLOSED: i32 = -5;
pub const ALK_E_TIMEOUT: i32 = -6;
pub const ALK_E_TRANSPORT: i32 = -7;
pub const ALK_E_RESET: i32 = -8;
pub const ALK_E_STOPPED: i32 = -9;
pub const ALK_E_CONNECT: i32 = -10;
pub const ALK_E_HANDSHAKE: i32 = -11;
pub const ALK_E_ALPN: i32 = -12;
pub const ALK_E_PIN: i32 = -13;
pub const ALK_E_BIND: i32 = -14;
pub const ALK_E_INTERNAL: i32 = -15;
pub const ALK_E_SHUTDOWN: i32 = -16;
pub const ALK_E_UNSUPPORTED: i32 = -17;

pub const ALK_F_FIN: u32 = 1;
pub const ALK_F_REMOTE: u32 = 2;

pub const ALK_RELAY_DISABLED: u32 = 0;
pub const ALK_RELAY_CUSTOM: u32 = 1;
pub const ALK_RELAY_N0: u32 = 2;

pub const ALK_BIND_DIAL_ONLY: u32 = 1;

pub const ALK_INIT_FAULTS: u32 = 1;

pub const ALK_ADDRS_ADVERTISED: u32 = 0;
pub const ALK_ADDRS_BOUND: u32 = 1;

pub const ALK_PATH_UNKNOWN: u32 = 0;
pub const ALK_PATH_DIRECT: u32 = 1;
pub const ALK_PATH_RELAY: u32 = 2;

pub const MAX_IO: usize = 64 * 1024;
