//! One connection to a peer node, on plain threads: callbacks and the reader only encode
//! and queue a frame; a writer thread drains the bounded queue into one buffer and one
//! write, and sends a tick after a quarter of the tick time without writing; a reader
//! thread reads frames, answers ticks by their mere arrival, splits control and payload
//! and hands them to `incoming`. A frame past the size cap, a frame that is not a
//! distribution message, or a control message that does not decode drops the connection
//! with one log line; a peer silent for the whole tick time is dropped too.

use std::io::{self, BufWriter, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam::channel::{self, Receiver, Sender, TrySendError};
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

/// A live connection.
pub(crate) struct Conn {
    pub peer: Peer,
    /// Whether we dialled it (`out`) or the peer did (`in`).
    pub outgoing: bool,
    tx: Sender<Vec<u8>>,
    socket: TcpStream,
    closed: AtomicBool,
    pub stats: ConnStats,
    /// When the connection came up.
    pub since: std::time::Instant,
}

impl Conn {
    /// Queues a frame; false if the connection is gone. A full queue drops the connection.
    pub(crate) fn send(&self, frame: Vec<u8>) -> bool {
        let len = frame.len() as u64;
        match self.tx.try_send(frame) {
            Ok(()) => {
                self.stats.msgs_out.fetch_add(1, Ordering::Relaxed);
                self.stats.bytes_out.fetch_add(len, Ordering::Relaxed);
                true
            }
            Err(TrySendError::Full(_)) => {
                self.close();
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Shuts the socket: the reader sees the end and reports the connection lost.
    pub(crate) fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            let _ = self.socket.shutdown(Shutdown::Both);
        }
    }

    pub(crate) fn overloaded(&self) -> bool {
        self.tx.is_full()
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
            queue: self.tx.len(),
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
    let (tx, rx) = channel::bounded(QUEUE_BOUND);
    let conn = Arc::new(Conn {
        peer,
        outgoing,
        tx,
        socket: stream.try_clone()?,
        closed: AtomicBool::new(false),
        stats: ConnStats::default(),
        since: std::time::Instant::now(),
    });
    let writer = stream.try_clone()?;
    let w = conn.clone();
    std::thread::Builder::new()
        .name(format!("dist-w {}", conn.peer.name))
        .spawn(move || write_loop(writer, rx, tick / 4, &w))?;
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

fn write_loop(stream: TcpStream, rx: Receiver<Vec<u8>>, tick: Duration, conn: &Conn) {
    let mut out = BufWriter::with_capacity(64 << 10, stream);
    loop {
        let first = match rx.recv_timeout(tick) {
            Ok(f) => f,
            Err(channel::RecvTimeoutError::Timeout) => vec![0; 4],
            Err(channel::RecvTimeoutError::Disconnected) => return,
        };
        let mut ok = out.write_all(&first).is_ok();
        // Batch whatever else is queued into the same write.
        while ok {
            match rx.try_recv() {
                Ok(f) => ok = out.write_all(&f).is_ok(),
                Err(_) => break,
            }
        }
        if !ok || out.flush().is_err() || conn.closed.load(Ordering::Acquire) {
            conn.close();
            return;
        }
    }
}

/// Reads frames until the connection ends; returns why it ended.
fn read_loop(mut s: TcpStream, conn: &Arc<Conn>, shared: &Arc<Shared>, system: &System) -> String {
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
