//! alknet-iroh: the project's C ABI over the published `iroh` crate, linked into the Go
//! module `github.com/alkdev/alknet/iroh` with cgo. The header `include/alknet_iroh.h` is
//! normative; spec: iroh.md (§3 concurrency, §4 ABI, §5 behaviour).
//!
//! `abi` holds every exported function and every `unsafe` block; `queue` the runtime,
//! completion queue, tokens and handles; `ep` endpoints; `io` connections and streams;
//! `log` iroh's log ring.

pub mod abi;
mod ep;
mod io;
mod log;
mod queue;
pub mod status;

pub use ep::BindOpts;
pub use queue::Completion;
