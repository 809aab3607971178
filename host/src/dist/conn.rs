//! One connection to a peer node, on plain threads. A sender (a callback, the reader)
//! never blocks: when nothing is queued and nothing is being written, it tries the frame
//! straight into the socket without waiting (`MSG_DONTWAIT`: a round trip saves a thread
//! wake-up); otherwise, or for what the socket did not take, it appends to the outbox,
//! which a writer thread writes in one go — so frames leave in the order they were sent.
//! The writer also sends a tick after a quarter of the tick time without writing. A reader
//! thread reads frames (buffered), answers ticks by their mere arrival, splits control and
//! payload and hands them to `incoming`. A frame past the size cap, a frame that is not a
//! distribution message, or a control message that does not decode drops the connection
//! with one log line; a peer silent for the whole tick time is dropped too.

use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::socket::MsgFlags;
use parking_lot::{Condvar, Mutex};
use plugin_api::etf;

use super::control::Op;
use super::handshake::Peer;
use super::node::Shared;
use crate::system::System;

/// The largest frame accepted from a peer (an 8 MB message fits many times over).
pub(crate) const MAX_FRAME: usize = 256 << 20;
/// Frames queued for a peer before the connection counts as overloaded and is dropped
/// (BEAM suspends the sender instead; a callback cannot be suspended).
pub(crate) const QUEUE_BOUND: usize = 65_536;

/// Counters an operator reads.
#[derive(Default)]
pub(crate) struct ConnStats {
    pub msgs_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub msgs_out: AtomicU64,
    pub bytes_out: AtomicU64,
}

/// Frames waiting for the writer thread.
///
/// Invariant: a sender writes to the socket itself only while `buf` is empty and
/// `writing` is false, under this lock — so nothing queued earlier can be overtaken.
#[derive(Default)]
struct Outbox {
    /// Queued bytes, whole frames (the first perhaps partly sent already).
    buf: Vec<u8>,
    /// Frames in `buf` (the queue bound counts frames).
    frames: usize,
    /// The writer thread is writing a batch it took from `buf`.
    writing: bool,
    /// When the last frame was sent (directly or queued).
    last_send: Option<Instant>,
}

/// Sends closer together than this are a burst: they go to the writer, which batches
/// them into few writes (a frame per syscall, and per TCP segment, costs the receiver
/// more than it saves the sender). A request/reply exchange is far slower than this.
const BURST_GAP: Duration = Duration::from_micros(10);

/// A live connection.
pub(crate) struct Conn {
    pub peer: Peer,
    /// Whether we dialled it (`out`) or the peer did (`in`).
    pub outgoing: bool,
    out: Mutex<Outbox>,
    /// Wakes the writer when `out` has something.
    wake: Condvar,
    socket: TcpStream,
    closed: AtomicBool,
    pub stats: ConnStats,
    /// When the connection came up.
    pub since: std::time::Instant,
}

impl Conn {
    /// Sends a frame now if the socket takes it without waiting, else queues it; false if
    /// the connection is gone. A full queue drops the connection.
    pub(crate) fn send(&self, frame: Vec<u8>) -> bool {
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        let mut out = self.out.lock();
        if out.frames >= QUEUE_BOUND {
            drop(out);
            self.close();
            return false;
        }
        self.stats.msgs_out.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes_out
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        let mut rest = &frame[..];
        let now = Instant::now();
        let burst = out.last_send.is_some_and(|t| now - t < BURST_GAP);
        out.last_send = Some(now);
        if out.buf.is_empty() && !out.writing && !burst {
            // Nothing ahead of it (the invariant on `Outbox`): try it straight in.
            let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
            match nix::sys::socket::send(self.socket.as_raw_fd(), rest, flags) {
                Ok(n) => rest = &rest[n..],
                Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => {}
                Err(_) => {
                    drop(out);
                    self.close();
                    return false;
                }
            }
            if rest.is_empty() {
                return true;
            }
        }
        out.buf.extend_from_slice(rest);
        out.frames += 1;
        drop(out);
        self.wake.notify_one();
        true
    }

    /// Shuts the socket: the reader sees the end and reports the connection lost.
    pub(crate) fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            let _ = self.socket.shutdown(Shutdown::Both);
            // Under the lock, so the writer cannot miss the wake-up between its check of
            // `closed` and its wait.
            let _guard = self.out.lock();
            self.wake.notify_all();
        }
    }

    pub(crate) fn overloaded(&self) -> bool {
        self.out.lock().frames >= QUEUE_BOUND
    }

    /// What an operator sees of it.
    pub(crate) fn row(&self) -> crate::observe::model::NodeRow {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        crate::observe::model::NodeRow {
            node: self.peer.name.clone(),
            direction: if self.outgoing { "out" } else { "in" }.into(),
            hidden: self.peer.flags & super::handshake::flags::PUBLISHED == 0,
            up_secs: self.since.elapsed().as_secs(),
            msgs_in: get(&self.stats.msgs_in),
            bytes_in: get(&self.stats.bytes_in),
            msgs_out: get(&self.stats.msgs_out),
            bytes_out: get(&self.stats.bytes_out),
            queue: self.out.lock().frames,
        }
    }
}

/// Starts the threads of an admitted connection and returns it. `register` puts it in
/// the node's table before the reader starts: replies to the peer's first frames must
/// find it there.
pub(crate) fn start(
    stream: TcpStream,
    peer: Peer,
    outgoing: bool,
    shared: Arc<Shared>,
    system: Arc<System>,
    register: impl FnOnce(&Arc<Conn>),
) -> io::Result<Arc<Conn>> {
    let tick = shared.ticktime;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(tick))?;
    stream.set_write_timeout(Some(tick))?;
    let conn = Arc::new(Conn {
        peer,
        outgoing,
        out: Mutex::default(),
        wake: Condvar::new(),
        socket: stream.try_clone()?,
        closed: AtomicBool::new(false),
        stats: ConnStats::default(),
        since: std::time::Instant::now(),
    });
    let writer = stream.try_clone()?;
    let w = conn.clone();
    std::thread::Builder::new()
        .name(format!("dist-w {}", conn.peer.name))
        .spawn(move || write_loop(writer, tick / 4, &w))?;
    register(&conn);
    let r = conn.clone();
    std::thread::Builder::new()
        .name(format!("dist-r {}", conn.peer.name))
        .spawn(move || {
            let reason = read_loop(stream, &r, &shared, &system);
            r.close();
            shared.connection_lost(&r, &reason, &system);
        })?;
    Ok(conn)
}

fn write_loop(mut stream: TcpStream, tick: Duration, conn: &Conn) {
    let mut spare = Vec::new();
    loop {
        let mut out = conn.out.lock();
        while out.buf.is_empty() {
            if conn.closed.load(Ordering::Acquire) {
                return;
            }
            if conn.wake.wait_for(&mut out, tick).timed_out() && out.buf.is_empty() {
                // A quarter of the tick time with nothing for us to write: tick.
                out.buf.extend_from_slice(&[0; 4]);
            }
        }
        // Take the whole batch; senders queue behind `writing` meanwhile.
        let batch = std::mem::replace(&mut out.buf, std::mem::take(&mut spare));
        out.frames = 0;
        out.writing = true;
        drop(out);
        let ok = stream.write_all(&batch).is_ok();
        let mut out = conn.out.lock();
        out.writing = false;
        spare = batch;
        spare.clear();
        drop(out);
        if !ok || conn.closed.load(Ordering::Acquire) {
            conn.close();
            return;
        }
    }
}

/// Reads frames until the connection ends; returns why it ended.
fn read_loop(s: TcpStream, conn: &Arc<Conn>, shared: &Arc<Shared>, system: &System) -> String {
    // Buffered: a burst of small frames is a few reads, not two per frame.
    let mut s = BufReader::with_capacity(64 << 10, s);
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 4];
        if let Err(e) = s.read_exact(&mut len) {
            return io_reason(&e, conn);
        }
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 {
            continue; // a tick: its arrival is the answer
        }
        if len > MAX_FRAME {
            return format!("bad frame: {len} bytes is over the {MAX_FRAME}-byte cap");
        }
        buf.clear();
        buf.resize(len, 0);
        if let Err(e) = s.read_exact(&mut buf) {
            return io_reason(&e, conn);
        }
        conn.stats.msgs_in.fetch_add(1, Ordering::Relaxed);
        conn.stats
            .bytes_in
            .fetch_add(len as u64 + 4, Ordering::Relaxed);
        if buf[0] != b'p' {
            return format!("bad frame: type {} is not a distribution message", buf[0]);
        }
        let (ctl, used) = match etf::decode_prefix(&buf[1..]) {
            Ok(x) => x,
            Err(e) => return format!("bad frame: control message: {e}"),
        };
        let op = match Op::decode(ctl) {
            Ok(op) => op,
            Err(e) => return format!("bad frame: {e}"),
        };
        let payload = &buf[1 + used..];
        super::incoming::handle(shared, conn, system, op, payload);
    }
}

fn io_reason(e: &io::Error, conn: &Conn) -> String {
    if conn.closed.load(Ordering::Acquire) {
        if conn.overloaded() {
            "overloaded: outbound queue full".into()
        } else {
            "closed".into()
        }
    } else if matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    ) {
        "net_tick_timeout".into()
    } else if e.kind() == io::ErrorKind::UnexpectedEof {
        "connection_closed".into()
    } else {
        e.to_string()
    }
}
