//! The listener: accepts one client at a time on its Unix socket (mode 0600) and, if asked, on
//! TCP 127.0.0.1; plays what arrives, saves it, reports its clock. Bad input of any kind costs
//! the sender its connection and a log line, never the listener: a piece it cannot play is
//! reported to its sender and dropped, a panic inside playback is caught (the playback is
//! stopped and the locks recovered), and the busy slot is freed however a connection ends.

use super::address::Conn;
use super::keys::{KeySettings, Keys};
use super::protocol::{encode, Decoder, Reply, Request, Status, LISTEN_BPM, MAX_NOTES, VERSION};
use super::save::save_piece;
use crate::music::notes::{Note, STEPS_PER_QUARTER};
use crate::music::phrase::{Catcher, PhraseRules};
use crate::recover::{lock, panic_text};
use crate::sound::piece::Piece;
use crate::sound::playback::Playback;
use anyhow::{bail, Context, Result};
use std::convert::Infallible;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a connection's loop wakes to report the clock while a piece plays.
const TICK: Duration = Duration::from_millis(50);
/// How often it wakes while keys are heard, to notice a phrase's end.
const HEARING_TICK: Duration = Duration::from_millis(5);
/// Status while a piece plays (the client interpolates between reports).
const STATUS_PLAYING: Duration = Duration::from_millis(100);
/// Status while idle: a heartbeat, so the client notices a dead link.
const STATUS_IDLE: Duration = Duration::from_secs(1);
/// A client that stops sending halfway through a message is dropped after this long.
const STALL: Duration = Duration::from_secs(10);
/// A client that does not take our replies for this long is gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a new connection waits for the client being served to finish before it is turned
/// away as a second client.
const BUSY_GRACE: Duration = Duration::from_millis(250);

/// Where log lines go (stdout in `nanotune listen`; a list in tests).
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// A Unix socket bound at a path, which is removed again when the listener ends (if it is still
/// ours: a later listener may have replaced it).
struct BoundSocket {
    listener: UnixListener,
    path: PathBuf,
    inode: (u64, u64),
}

impl Drop for BoundSocket {
    fn drop(&mut self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.inode {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// A listener's sockets, bound and not yet serving.
pub struct Listener {
    socket: Option<BoundSocket>,
    tcp: Option<TcpListener>,
    keys: Option<KeySettings>,
}

impl Listener {
    /// Binds the Unix socket at `socket` (created with mode 0600; a stale socket left by a
    /// listener that died is replaced, a live one is an error) and, with `port`, TCP on
    /// 127.0.0.1 only (port 0: any free port).
    pub fn bind(socket: Option<&Path>, port: Option<u16>) -> Result<Listener> {
        if socket.is_none() && port.is_none() {
            bail!("a listener needs a socket path or a port");
        }
        let socket = socket.map(bind_private_socket).transpose()?;
        let tcp = port
            .map(|port| {
                TcpListener::bind(("127.0.0.1", port))
                    .with_context(|| format!("listening on 127.0.0.1:{port}"))
            })
            .transpose()?;
        Ok(Listener {
            socket,
            tcp,
            keys: None,
        })
    }

    /// Hears these keys when a client asks ([`Request::Listen`]) and sends it their phrases.
    pub fn with_keys(mut self, keys: KeySettings) -> Listener {
        self.keys = Some(keys);
        self
    }

    pub fn socket_path(&self) -> Option<&Path> {
        self.socket.as_ref().map(|s| s.path.as_path())
    }

    pub fn tcp_address(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().and_then(|t| t.local_addr().ok())
    }

    /// Starts serving on threads of its own: pieces play on `playback` and, with `save_dir`,
    /// are saved there.
    pub fn serve(
        self,
        playback: Box<dyn Playback>,
        save_dir: Option<PathBuf>,
        log: Log,
    ) -> Serving {
        let plays_on = playback.describe();
        let server = Arc::new(Server {
            playback: Mutex::new(playback),
            plays_on,
            save_dir,
            log,
            busy: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            clients: AtomicU64::new(0),
            pieces: AtomicU64::new(0),
            current: Mutex::new(None),
            open: Mutex::new(None),
            keys: self.keys,
        });
        let mut threads = Vec::new();
        if let Some(tcp) = self.tcp {
            let server = server.clone();
            threads.push(spawn("nanotune-listen-tcp", move || {
                accept_until_stopped(&tcp, &server, |tcp| {
                    let (stream, _) = tcp.accept()?;
                    let _ = stream.set_nodelay(true);
                    Ok(Conn::Tcp(stream))
                })
            }));
        }
        let socket = self.socket;
        if let Some(bound) = &socket {
            let listener = bound
                .listener
                .try_clone()
                .expect("cloning a listening socket");
            let server = server.clone();
            threads.push(spawn("nanotune-listen-unix", move || {
                accept_until_stopped(&listener, &server, |l| Ok(Conn::Unix(l.accept()?.0)))
            }));
        }
        Serving {
            server,
            threads,
            socket,
        }
    }
}

/// Accepts connections on `listener` until the server stops: waits for one at most a tick at a
/// time (poll), so stopping needs no wake-up connection that might not get through.
fn accept_until_stopped<L: AsRawFd>(
    listener: &L,
    server: &Arc<Server>,
    accept: impl Fn(&L) -> std::io::Result<Conn>,
) {
    while !server.stopping.load(Ordering::Acquire) {
        let mut fds = [libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: one valid pollfd, for a descriptor `listener` keeps open.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 1, TICK.as_millis() as libc::c_int) };
        if ready <= 0 {
            continue;
        }
        match accept(listener) {
            Ok(conn) => server.accept(conn),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => {
                (server.log)(&format!("accepting a connection: {e}"));
                // Out of descriptors, say: do not spin.
                std::thread::sleep(TICK);
            }
        }
    }
}

/// A listener serving; dropping it (or [`Serving::stop`]) stops it and removes its socket.
pub struct Serving {
    server: Arc<Server>,
    threads: Vec<JoinHandle<()>>,
    socket: Option<BoundSocket>,
}

impl Serving {
    /// Pieces received so far.
    pub fn pieces(&self) -> u64 {
        self.server.pieces.load(Ordering::Relaxed)
    }

    /// Blocks for as long as the listener serves (in `nanotune listen`: until killed).
    pub fn wait(mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// Stops accepting, ends the connection being served, stops the sound.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.server.stopping.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // Connection threads see `stopping` within a tick; wait for the one being served.
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.server.busy.load(Ordering::Acquire) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut playback = lock(&self.server.playback);
        let _ = catch_unwind(AssertUnwindSafe(|| playback.stop()));
        drop(playback);
        self.socket.take();
    }
}

/// What the serving threads share.
struct Server {
    playback: Mutex<Box<dyn Playback>>,
    plays_on: String,
    save_dir: Option<PathBuf>,
    log: Log,
    /// A client is being served.
    busy: AtomicBool,
    stopping: AtomicBool,
    /// Connections accepted so far (numbers them in the log).
    clients: AtomicU64,
    pieces: AtomicU64,
    /// The piece playing: which client sent it, and its id there.
    current: Mutex<Option<(u64, u64)>>,
    /// The piece playing while it is being made, as far as it arrived.
    open: Mutex<Option<Open>>,
    /// The keys phrases are caught from, if any.
    keys: Option<KeySettings>,
}

/// A piece being made that plays here: what of it has arrived, and where it is whole.
struct Open {
    client: u64,
    id: u64,
    /// Its number among the pieces this listener received.
    number: u64,
    piece: Piece,
    settled: f64,
}

impl Open {
    /// Whether `part` may follow what arrived: no note before the settled point (a piece only
    /// grows at its end), the settled point not moving back, and the notes within bounds.
    fn check(&self, part: &Piece, settled: Option<f64>) -> Result<(), String> {
        if let Some(early) = part.score.notes.iter().find(|n| n.start < self.settled) {
            return Err(format!(
                "a note at {} quarters came after the piece was whole to {}",
                early.start, self.settled
            ));
        }
        if settled.is_some_and(|q| q < self.settled) {
            return Err(format!(
                "the piece went back from whole to {} quarters",
                self.settled
            ));
        }
        let notes = self.piece.score.notes.len() + part.score.notes.len();
        if notes > MAX_NOTES {
            return Err(format!("{notes} notes, over the {MAX_NOTES} limit"));
        }
        Ok(())
    }
}

/// Phrases being caught for a client: the keys heard, the catcher, and how many were sent.
struct Hearing {
    keys: Keys,
    catcher: Catcher,
    bpm: f64,
    sent: u64,
    /// When the last phrase was sent, until a piece (its answer) arrives.
    last_sent: Option<Instant>,
}

impl Server {
    /// Serves `conn` on a thread of its own, or turns it away if a client is being served.
    fn accept(self: &Arc<Self>, mut conn: Conn) {
        let number = self.clients.fetch_add(1, Ordering::Relaxed) + 1;
        let _ = conn.set_write_timeout(Some(WRITE_TIMEOUT));
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        // A client that has just hung up frees the slot within a tick: give it that long.
        let deadline = Instant::now() + BUSY_GRACE;
        let mut ours = !self.busy.swap(true, Ordering::AcqRel);
        while !ours && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            ours = !self.busy.swap(true, Ordering::AcqRel);
        }
        if !ours {
            let message = "busy: another client is connected (one at a time)".to_string();
            (self.log)(&format!(
                "client {number} ({}): turned away, {message}",
                conn.peer()
            ));
            let _ = conn.write_all(&encode(&Reply::Error { message }));
            return;
        }
        let server = self.clone();
        spawn("nanotune-listen-client", move || {
            // Frees the slot when this thread ends, a panic included.
            let _slot = BusySlot(&server.busy);
            let peer = conn.peer();
            let ended = match catch_unwind(AssertUnwindSafe(|| server.converse(&mut conn, number)))
            {
                Ok(result) => {
                    let Err(ended) = result;
                    ended
                }
                Err(panic) => {
                    server.recover_playback();
                    Ended::Dropped(format!("the listener failed: {}", panic_text(&*panic)))
                }
            };
            // A piece cut off while being made plays and is kept as far as it came.
            let mut playback = lock(&server.playback);
            server.cut_open(Some(playback.as_mut()), "its sender left");
            drop(playback);
            let line = match ended {
                Ended::Left(how) => format!("client {number} ({peer}): {how}"),
                Ended::Dropped(why) => {
                    let _ = conn.write_all(&encode(&Reply::Error {
                        message: why.clone(),
                    }));
                    format!("client {number} ({peer}): dropped: {why}")
                }
            };
            (server.log)(&line);
        });
    }

    /// The conversation with one client, until it ends one way or the other.
    fn converse(&self, conn: &mut Conn, number: u64) -> Result<Infallible, Ended> {
        let hello = Reply::Hello {
            version: VERSION,
            plays_on: self.plays_on.clone(),
            saves_to: self.save_dir.as_ref().map(|d| d.display().to_string()),
        };
        send(conn, &hello)?;
        conn.set_read_timeout(Some(TICK))
            .map_err(|e| Ended::Dropped(e.to_string()))?;
        let mut decoder = Decoder::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut handled = 0u64;
        let mut last_bytes = Instant::now();
        let mut last_status = Instant::now();
        let mut was_playing = false;
        let mut hearing: Option<Hearing> = None;
        loop {
            if self.stopping.load(Ordering::Acquire) {
                return Err(Ended::Left("the listener is stopping".into()));
            }
            // While keys are heard, a phrase's end is noticed within a few milliseconds.
            let tick = if hearing.is_some() {
                HEARING_TICK
            } else {
                TICK
            };
            conn.set_read_timeout(Some(tick))
                .map_err(|e| Ended::Dropped(e.to_string()))?;
            if let Some(h) = &mut hearing {
                for phrase in self.caught(h) {
                    send(conn, &phrase)?;
                }
            }
            match conn.read(&mut buf) {
                Ok(0) if decoder.is_mid_message() => {
                    return Err(Ended::Dropped("hung up in the middle of a message".into()))
                }
                Ok(0) => return Err(Ended::Left("disconnected".into())),
                Ok(n) => {
                    decoder.push(&buf[..n]);
                    last_bytes = Instant::now();
                    loop {
                        let request = match decoder.next_message::<Request>() {
                            Ok(Some(request)) => request,
                            Ok(None) => break,
                            Err(e) => return Err(Ended::Dropped(e.to_string())),
                        };
                        handled += 1;
                        let mut reply = match request {
                            Request::Listen { bpm } => Some(self.listen(bpm, &mut hearing)),
                            request => self.handle(request, number),
                        };
                        // The first piece after a phrase is its answer: how long it took.
                        if let Some(
                            Reply::Received {
                                after_phrase_ms, ..
                            }
                            | Reply::Started {
                                after_phrase_ms, ..
                            },
                        ) = &mut reply
                        {
                            let sent = hearing.as_mut().and_then(|h| h.last_sent.take());
                            *after_phrase_ms = sent.map(|t| t.elapsed().as_secs_f64() * 1e3);
                        }
                        if let Some(reply) = reply {
                            send(conn, &reply)?;
                        }
                        send(conn, &Reply::Status(self.status(number, handled)))?;
                        last_status = Instant::now();
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if decoder.is_mid_message() && last_bytes.elapsed() > STALL {
                        return Err(Ended::Dropped(format!(
                            "sent nothing for {} s in the middle of a message",
                            STALL.as_secs()
                        )));
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    return Err(Ended::Left("disconnected".into()))
                }
                Err(e) => return Err(Ended::Dropped(format!("reading: {e}"))),
            }
            let status = self.status(number, handled);
            let every = if status.playing {
                STATUS_PLAYING
            } else {
                STATUS_IDLE
            };
            // At once when a piece ends, so the playhead stops with it.
            if last_status.elapsed() >= every || status.playing != was_playing {
                send(conn, &Reply::Status(status))?;
                last_status = Instant::now();
            }
            was_playing = status.playing;
        }
    }

    /// Starts hearing the keys at `bpm` (after a bar of clicks, with a count-in), or stops
    /// with `None`; says where the keys come from, or why none can be heard.
    fn listen(&self, bpm: Option<f64>, hearing: &mut Option<Hearing>) -> Reply {
        *hearing = None;
        let refuse = |error: String| Reply::Listening {
            keys: None,
            error: Some(error),
        };
        let Some(bpm) = bpm else {
            return Reply::Listening {
                keys: None,
                error: None,
            };
        };
        let Some(settings) = &self.keys else {
            return refuse(
                "this listener hears no keyboard: start it with --midi-in [PORT] or \
                 --midi-in-file FILE"
                    .into(),
            );
        };
        if !(bpm.is_finite() && LISTEN_BPM.contains(&bpm)) {
            return refuse(format!("{bpm} bpm is outside {LISTEN_BPM:?}"));
        }
        let mut rules = PhraseRules {
            bpm,
            gap_beats: settings.gap_beats,
            max_bars: settings.max_bars,
            origin: None,
        };
        let lead = if settings.count_in {
            self.count_in(bpm);
            rules.origin = Some(rules.bar_seconds());
            rules.bar_seconds()
        } else {
            0.0
        };
        match settings.source.start(bpm, lead) {
            Ok(keys) => {
                (self.log)(&format!("hearing {} for phrases", keys.from));
                let from = keys.from.clone();
                *hearing = Some(Hearing {
                    keys,
                    catcher: Catcher::new(rules),
                    bpm,
                    sent: 0,
                    last_sent: None,
                });
                Reply::Listening {
                    keys: Some(from),
                    error: None,
                }
            }
            Err(e) => {
                (self.log)(&format!("cannot hear the keys: {e:#}"));
                refuse(format!("{e:#}"))
            }
        }
    }

    /// A bar of four clicks on the sound output (high, short notes).
    fn count_in(&self, bpm: f64) {
        let clicks: Vec<Note> = (0..4)
            .map(|beat| Note {
                onset: beat * STEPS_PER_QUARTER as u64,
                pitch: if beat == 0 { 100 } else { 96 },
                duration: 1,
            })
            .collect();
        let click = Piece::from_grid("count-in", &clicks, bpm);
        let mut playback = lock(&self.playback);
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| playback.play(&click))).unwrap_or(Ok(())) {
            (self.log)(&format!("no count-in: {e:#}"));
        }
    }

    /// The phrases the keys have ended since the last look, saved and ready to send.
    fn caught(&self, h: &mut Hearing) -> Vec<Reply> {
        let mut phrases = Vec::new();
        for (at, event) in h.keys.arrived() {
            phrases.extend(h.catcher.poll(at));
            phrases.extend(h.catcher.push(at, event));
        }
        phrases.extend(h.catcher.poll(h.keys.now()));
        phrases
            .into_iter()
            .map(|phrase| {
                h.sent += 1;
                let piece = Piece::from_grid(&format!("phrase {}", h.sent), &phrase.notes, h.bpm);
                (self.log)(&format!("phrase {}: {} notes", h.sent, phrase.notes.len()));
                let (saved, save_error) = self.save(&format!("phrase {}", h.sent), &piece);
                h.last_sent = Some(Instant::now());
                Reply::Phrase {
                    number: h.sent,
                    piece,
                    saved,
                    save_error,
                }
            })
            .collect()
    }

    /// Saves `piece` in the save folder, if there is one, and logs it as `what`: where it was
    /// saved, or why not.
    fn save(&self, what: &str, piece: &Piece) -> (Option<String>, Option<String>) {
        let Some(dir) = &self.save_dir else {
            return (None, None);
        };
        match save_piece(dir, piece) {
            Ok(path) => {
                (self.log)(&format!("{what}: saved {}", path.display()));
                (Some(path.display().to_string()), None)
            }
            Err(e) => {
                (self.log)(&format!("{what}: not saved: {e:#}"));
                (None, Some(format!("{e:#}")))
            }
        }
    }

    /// Carries out one request; a reply beyond the status, if it has one. A panic inside the
    /// playback is caught: the playback is stopped, and a piece that caused it is refused.
    fn handle(&self, request: Request, client: u64) -> Option<Reply> {
        let refused = match &request {
            Request::Play { id, .. } | Request::Begin { id, .. } | Request::More { id, .. } => {
                Some(*id)
            }
            _ => None,
        };
        match catch_unwind(AssertUnwindSafe(|| self.carry_out(request, client))) {
            Ok(reply) => reply,
            Err(panic) => {
                self.recover_playback();
                let why = format!("the listener failed to play it: {}", panic_text(&*panic));
                (self.log)(&format!("client {client}: {why}"));
                refused.map(|id| Reply::Refused { id, message: why })
            }
        }
    }

    /// Stops a playback that failed (itself guarded), so the next piece starts from silence.
    fn recover_playback(&self) {
        let mut playback = lock(&self.playback);
        let _ = catch_unwind(AssertUnwindSafe(|| playback.stop()));
        *lock(&self.current) = None;
        lock(&self.open).take();
    }

    /// Ends the piece being made, if one is (`why` it was cut off): kept (saved) as far as it
    /// came, and played to there where `playback` is given (it goes on playing).
    fn cut_open(&self, playback: Option<&mut dyn Playback>, why: &str) {
        let Some(open) = lock(&self.open).take() else {
            return;
        };
        if let Some(playback) = playback {
            let _ = playback.grow(&open.piece, None);
        }
        let what = format!("piece {} (cut off: {why})", open.number);
        self.save(&what, &open.piece);
    }

    /// A piece is all here: logged, saved, and confirmed.
    fn arrived(&self, id: u64, number: u64, piece: &Piece) -> Reply {
        let notes = piece.score.notes.len();
        let seconds = piece.length_seconds();
        (self.log)(&format!(
            "piece {number}: \"{}\", {notes} notes, {seconds:.1} s",
            piece.title
        ));
        let (saved, save_error) = self.save(&format!("piece {number}"), piece);
        Reply::Received {
            id,
            notes,
            seconds,
            saved,
            save_error,
            after_phrase_ms: None,
        }
    }

    fn carry_out(&self, request: Request, client: u64) -> Option<Reply> {
        let mut playback = lock(&self.playback);
        let refuse = |id: u64, title: &str, why: String| {
            *lock(&self.current) = None;
            let message = format!("\"{title}\" cannot play: {why}");
            (self.log)(&format!("client {client}: refused {message}"));
            Some(Reply::Refused { id, message })
        };
        match request {
            Request::Play { id, piece } => {
                self.cut_open(None, "another piece came");
                if let Err(e) = playback.play(&piece) {
                    return refuse(id, &piece.title, format!("{e:#}"));
                }
                *lock(&self.current) = Some((client, id));
                let number = self.pieces.fetch_add(1, Ordering::Relaxed) + 1;
                return Some(self.arrived(id, number, &piece));
            }
            Request::Begin { id, piece, settled } => {
                self.cut_open(None, "another piece came");
                if let Err(e) = playback.play_open(&piece, settled) {
                    return refuse(id, &piece.title, format!("{e:#}"));
                }
                *lock(&self.current) = Some((client, id));
                let number = self.pieces.fetch_add(1, Ordering::Relaxed) + 1;
                (self.log)(&format!(
                    "piece {number}: \"{}\" begins as it is made",
                    piece.title
                ));
                *lock(&self.open) = Some(Open {
                    client,
                    id,
                    number,
                    piece,
                    settled,
                });
                return Some(Reply::Started {
                    id,
                    after_phrase_ms: None,
                });
            }
            Request::More { id, part, settled } => {
                let mut open = lock(&self.open);
                // A piece stopped or replaced here since: what comes after is not played.
                let growing = open.as_mut().filter(|o| (o.client, o.id) == (client, id))?;
                let grown = growing.check(&part, settled).and_then(|()| {
                    growing.piece.score.notes.extend(part.score.notes);
                    growing.settled = settled.unwrap_or(growing.settled);
                    playback
                        .grow(&growing.piece, settled)
                        .map_err(|e| format!("{e:#}"))
                });
                if let Err(why) = grown {
                    let title = growing.piece.title.clone();
                    open.take();
                    playback.stop();
                    return refuse(id, &title, why);
                }
                if settled.is_none() {
                    let whole = open.take().expect("the piece being made");
                    drop(open);
                    return Some(self.arrived(id, whole.number, &whole.piece));
                }
            }
            Request::Stop => {
                self.cut_open(None, "stopped");
                playback.stop();
            }
            Request::Pause { paused } => playback.set_paused(paused),
            Request::Volume { volume } => playback.set_volume(volume),
            Request::Seek { seconds } => playback.seek(seconds.max(0.0)),
            // Answered by the conversation, which holds what is heard.
            Request::Listen { .. } => {}
        }
        None
    }

    /// The clock as client `client` should see it, after `handled` of its requests.
    fn status(&self, client: u64, handled: u64) -> Status {
        let id = match *lock(&self.current) {
            Some((from, id)) if from == client => id,
            _ => 0,
        };
        let playback = lock(&self.playback);
        Status {
            handled,
            id,
            playing: playback.is_playing(),
            paused: playback.is_paused(),
            position: playback.position_seconds(),
            length: playback.length_seconds(),
            volume: playback.volume(),
        }
    }
}

/// Holds the listener's one client slot; frees it when dropped.
struct BusySlot<'a>(&'a AtomicBool);

impl Drop for BusySlot<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn send(conn: &mut Conn, reply: &Reply) -> Result<(), Ended> {
    conn.write_all(&encode(reply)).map_err(|e| match e.kind() {
        // It hung up between two of our reports: an ordinary goodbye.
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => {
            Ended::Left("disconnected".into())
        }
        _ => Ended::Dropped(format!("stopped taking our replies ({e})")),
    })
}

/// How a conversation ended.
enum Ended {
    /// The client left (or the listener is stopping).
    Left(String),
    /// The client was dropped, for this reason.
    Dropped(String),
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .expect("spawning a listener thread")
}

/// Binds a Unix socket at `path` that only this user can connect to. It is bound inside a fresh
/// folder of mode 0700, set to 0600, then moved into place, so there is no moment when it
/// exists at `path` with looser rights (no umask games, which would touch the whole process).
fn bind_private_socket(path: &Path) -> Result<BoundSocket> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            bail!("{} exists and is not a socket", path.display());
        }
        if UnixStream::connect(path).is_ok() {
            bail!("a listener is already running at {}", path.display());
        }
        // Left by a listener that died: nothing answers there.
        std::fs::remove_file(path).with_context(|| format!("removing stale {}", path.display()))?;
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a socket path", path.display()))?;
    let staging = parent.join(format!(
        ".{}.{}.bind",
        name.to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .with_context(|| format!("creating {}", staging.display()))?;
    let result = (|| -> Result<BoundSocket> {
        let temporary = staging.join("s");
        let listener = UnixListener::bind(&temporary)
            .with_context(|| format!("listening on {}", path.display()))?;
        std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&temporary, path)
            .with_context(|| format!("placing the socket at {}", path.display()))?;
        let meta = std::fs::symlink_metadata(path)?;
        Ok(BoundSocket {
            listener,
            path: path.to_path_buf(),
            inode: (meta.dev(), meta.ino()),
        })
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}
