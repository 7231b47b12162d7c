//! iroh's own log (spec iroh.md §4.3): a `tracing` subscriber that keeps events at or above
//! the level Go set in a ring of 256 × 512 bytes; the oldest entry goes first when full. One
//! ALK_TOKEN_LOG completion tells the poller there is something to take.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

use crate::queue::{Outcome, push};
use crate::status::*;

const RING: usize = 256;
const ENTRY: usize = 512;

/// 0 off, 1 error, 2 warn (the default), 3 info, 4 debug, 5 trace.
static LEVEL: AtomicI32 = AtomicI32::new(2);
static SIGNALLED: AtomicBool = AtomicBool::new(false);
pub static DROPPED: AtomicU64 = AtomicU64::new(0);
static ENTRIES: Mutex<VecDeque<(i32, Vec<u8>)>> = Mutex::new(VecDeque::new());

fn level_num(l: &Level) -> i32 {
    match *l {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

pub fn set_level(l: i32) -> i32 {
    if !(0..=5).contains(&l) {
        return ALK_E_ARG;
    }
    LEVEL.store(l, Ordering::Relaxed);
    ALK_OK
}

/// Takes the oldest entry into `buf` (cut to its capacity); `None` when the ring is empty,
/// which also re-arms the signal.
pub fn take(buf: &mut [u8]) -> Option<(usize, i32)> {
    let mut e = ENTRIES.lock().unwrap_or_else(|p| p.into_inner());
    match e.pop_front() {
        Some((level, text)) => {
            let n = text.len().min(buf.len());
            buf[..n].copy_from_slice(&text[..n]);
            Some((n, level))
        }
        None => {
            SIGNALLED.store(false, Ordering::Release);
            None
        }
    }
}

pub fn record(level: i32, text: String) {
    let mut bytes = text.into_bytes();
    bytes.truncate(ENTRY);
    {
        let mut e = ENTRIES.lock().unwrap_or_else(|p| p.into_inner());
        if e.len() >= RING {
            e.pop_front();
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
        e.push_back((level, bytes));
    }
    if !SIGNALLED.swap(true, Ordering::AcqRel) {
        push(Outcome::ok(0).complete(ALK_TOKEN_LOG));
    }
}

struct Ring;

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl Subscriber for Ring {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes() // the level changes at run time
    }
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.is_event() && level_num(m.level()) <= LEVEL.load(Ordering::Relaxed)
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, e: &Event<'_>) {
        let mut text = String::from(e.metadata().target());
        text.push(':');
        e.record(&mut Fields(&mut text));
        record(level_num(e.metadata().level()), text);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Installs the ring as the global subscriber unless the host already set one.
pub fn install() {
    let _ = tracing::subscriber::set_global_default(Ring);
}
