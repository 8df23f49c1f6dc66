//! The server side of a listener: connects, sends pieces and controls, and keeps a view of the
//! listener's clock from its reports. Every call returns at once (writes of a few kilobytes to a
//! socket); a reader thread takes the replies.

use super::address::{default_socket_path, Address, Conn};
use super::protocol::{check_piece, encode, printable, Decoder, Reply, Request, Status};
use crate::music::notes::{canonicalise, Note};
use crate::recover::lock;
use crate::sound::piece::Piece;
use crate::sound::playback::{clamp_volume, sounding_seconds, Clock, Growing, Playback};
use crate::sound::timed::check_length;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a listener has to say hello before it counts as not answering.
const HELLO_TIMEOUT: Duration = Duration::from_secs(3);
/// The listener reports at least once a second; silence this long means the link is dead.
const SILENCE_TIMEOUT: Duration = Duration::from_secs(5);
/// A write the listener does not take for this long means it is gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(3);

/// The listener's confirmation that a piece arrived.
#[derive(Clone, Debug, PartialEq)]
pub struct Received {
    pub id: u64,
    pub notes: usize,
    /// Seconds it lasts.
    pub seconds: f64,
    /// Where the listener saved it (a path on the listener's machine).
    pub saved: Option<String>,
    pub save_error: Option<String>,
}

/// A phrase played on the listener's keyboard, on the grid.
#[derive(Clone, Debug, PartialEq)]
pub struct Heard {
    /// Numbered from 1 for the connection.
    pub number: u64,
    /// Canonical notes from step 0.
    pub notes: Vec<Note>,
    /// Where the listener saved it (a path on the listener's machine).
    pub saved: Option<String>,
    pub save_error: Option<String>,
}

/// A connection to a listener.
pub struct Client {
    address: Address,
    conn: Conn,
    shared: Arc<Shared>,
    reader: Option<JoinHandle<()>>,
    plays_on: String,
    saves_to: Option<String>,
    next_id: u64,
    /// The piece being made that plays there: its id, and how much of it went.
    growing: Option<(u64, Growing)>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

/// The client's view of the listener.
struct State {
    /// The listener's clock, as last reported and moved by our own requests since.
    clock: Clock,
    /// Our latest piece (0: none sent yet).
    id: u64,
    /// Whether the listener is playing it.
    playing: bool,
    paused: bool,
    volume: f32,
    /// Requests sent; reports that have not seen them all are stale.
    sent: u64,
    received: Vec<Received>,
    /// Pieces the listener turned down, and why.
    refused: Vec<(u64, String)>,
    /// Why the listener is no longer reachable.
    gone: Option<String>,
    closing: bool,
    /// The answer to the last listen: where the keys come from, or why none are heard.
    listening: Option<Result<String, String>>,
    /// Phrases that arrived and were not yet taken, oldest first.
    phrases: VecDeque<Heard>,
    /// How long after the listener sent its last phrase the answer began playing there, until
    /// taken.
    answer_time: Option<Duration>,
}

impl Client {
    /// Connects and waits for the listener's hello. A busy listener (another client is
    /// connected), a wrong version or silence is an error saying so.
    pub fn connect(address: &Address) -> Result<Client> {
        let mut conn = Conn::connect(address)?;
        conn.set_read_timeout(Some(HELLO_TIMEOUT))?;
        conn.set_write_timeout(Some(WRITE_TIMEOUT))?;
        let mut decoder = Decoder::new();
        let mut buf = [0u8; 4096];
        let hello = loop {
            if let Some(reply) = decoder
                .next_message::<Reply>()
                .with_context(|| format!("{address} is not a nanotune listener"))?
            {
                break reply;
            }
            match conn.read(&mut buf) {
                Ok(0) => bail!("the listener at {address} hung up before saying hello"),
                Ok(n) => decoder.push(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    bail!(
                        "nothing at {address} answered like a nanotune listener within {} s",
                        HELLO_TIMEOUT.as_secs()
                    )
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e).with_context(|| format!("reading from {address}")),
            }
        };
        let (plays_on, saves_to) = match hello {
            Reply::Hello {
                plays_on, saves_to, ..
            } => (clean(&plays_on), saves_to.as_deref().map(clean)),
            Reply::Error { message } => {
                bail!("the listener at {address} refused: {}", clean(&message))
            }
            other => bail!("the listener at {address} began with {other:?}, not a hello"),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                clock: Clock::default(),
                id: 0,
                playing: false,
                paused: false,
                volume: 1.0,
                sent: 0,
                received: Vec::new(),
                refused: Vec::new(),
                gone: None,
                closing: false,
                listening: None,
                phrases: VecDeque::new(),
                answer_time: None,
            }),
            changed: Condvar::new(),
        });
        let reader = {
            let conn = conn.try_clone()?;
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("nanotune-listener-replies".into())
                .spawn(move || read_replies(conn, decoder, &shared))?
        };
        Ok(Client {
            address: address.clone(),
            conn,
            shared,
            reader: Some(reader),
            plays_on,
            saves_to,
            next_id: 1,
            growing: None,
        })
    }

    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Where the listener's sound goes, as it said in its hello.
    pub fn plays_on(&self) -> &str {
        &self.plays_on
    }

    /// The folder the listener saves pieces in, if it does.
    pub fn saves_to(&self) -> Option<&str> {
        self.saves_to.as_deref()
    }

    /// Why the listener can no longer be reached, once it cannot.
    pub fn gone(&self) -> Option<String> {
        self.state().gone.clone()
    }

    /// Sends `piece` to be played from its start; returns its id (see [`Client::wait_received`]).
    pub fn send_piece(&mut self, piece: &Piece) -> Result<u64> {
        check_travels(piece)?;
        self.growing = None;
        let piece = piece.clone();
        self.start_piece(sounding_seconds(&piece), |id| Request::Play { id, piece })
    }

    /// Starts `piece`, still being made, at the listener: all of it before `settled` quarter
    /// notes goes now, the rest with [`Client::grow_piece`]; returns its id. The listener
    /// confirms it once it is whole ([`Client::wait_received`]).
    pub fn begin_piece(&mut self, piece: &Piece, settled: f64) -> Result<u64> {
        // The piece grown before ends here, whether or not this one can travel.
        self.growing = None;
        let mut growing = Growing::default();
        let part = growing.take(piece, Some(settled));
        check_travels(&part)?;
        let length = sounding_seconds(&part).max(part.score.seconds_at(settled));
        let id = self.start_piece(length, |id| Request::Begin {
            id,
            piece: part,
            settled,
        })?;
        self.growing = Some((id, growing));
        Ok(id)
    }

    /// Sends what `piece` (the one begun, grown) holds beyond what went: all of it before
    /// `settled` quarter notes, or the rest once it is whole (`None`).
    pub fn grow_piece(&mut self, piece: &Piece, settled: Option<f64>) -> Result<()> {
        let Some((id, growing)) = &mut self.growing else {
            return Ok(());
        };
        let id = *id;
        let part = growing.take(piece, settled);
        if settled.is_none() {
            self.growing = None;
        }
        check_travels(&part)?;
        let length = sounding_seconds(&part).max(settled.map_or(0.0, |q| part.score.seconds_at(q)));
        self.request(Request::More { id, part, settled }, |state| {
            state.clock.lengthen(length)
        });
        self.still_there()
    }

    /// Sends the request that starts a piece of `length` seconds under a new id, and takes its
    /// start into our view of the listener's clock; returns the id.
    fn start_piece(&mut self, length: f64, request: impl FnOnce(u64) -> Request) -> Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        self.request(request(id), |state| {
            state.id = id;
            state.playing = true;
            state.paused = false;
            state.clock.start(length);
        });
        self.still_there().map(|()| id)
    }

    /// An error saying why, once the listener can no longer be reached.
    fn still_there(&self) -> Result<()> {
        match self.gone() {
            Some(why) => bail!("{why}"),
            None => Ok(()),
        }
    }

    /// Waits until the listener confirms it has piece `id` (or is gone, or `timeout` passes).
    pub fn wait_received(&self, id: u64, timeout: Duration) -> Result<Received> {
        self.wait(timeout, "confirmation of the piece", |state| {
            if let Some(r) = state.received.iter().find(|r| r.id == id) {
                return Some(Ok(r.clone()));
            }
            let refused = state.refused.iter().find(|(r, _)| *r == id);
            refused.map(|(_, why)| Err(anyhow!("the listener refused the piece: {why}")))
        })
    }

    /// Asks the listener to hear its keyboard at `bpm` and send each phrase played there
    /// (`None`: stop); its answer comes in [`Client::listening`].
    pub fn listen(&mut self, bpm: Option<f64>) {
        self.request(Request::Listen { bpm }, |state| {
            state.listening = None;
            state.phrases.clear();
        });
    }

    /// The listener's answer to the last [`Client::listen`], once it came: where the keys come
    /// from, or why none can be heard.
    pub fn listening(&self) -> Option<Result<String, String>> {
        self.state().listening.clone()
    }

    /// How long after the listener sent its phrase the latest answer began playing there, on
    /// the listener's clock; once.
    pub fn take_answer_time(&self) -> Option<Duration> {
        self.state().answer_time.take()
    }

    /// The oldest phrase not yet taken.
    pub fn next_phrase(&self) -> Option<Heard> {
        self.state().phrases.pop_front()
    }

    /// Waits for [`Client::listening`] (or the listener to go, or `timeout`).
    pub fn wait_listening(&self, timeout: Duration) -> Result<String> {
        self.wait(timeout, "an answer to listen", |state| {
            state
                .listening
                .clone()
                .map(|r| r.map_err(|why| anyhow!(why)))
        })
    }

    /// Waits for the next phrase (or the listener to go, or `timeout`).
    pub fn wait_phrase(&self, timeout: Duration) -> Result<Heard> {
        self.wait(timeout, "a phrase", |state| {
            state.phrases.pop_front().map(Ok)
        })
    }

    /// Waits until `ready` gives an answer from the shared view.
    fn wait<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut ready: impl FnMut(&mut State) -> Option<Result<T>>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        let mut state = self.state();
        loop {
            if let Some(answer) = ready(&mut state) {
                return answer;
            }
            if let Some(why) = &state.gone {
                bail!("{why}");
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "no {what} from the listener at {} within {:.1} s",
                    self.address,
                    timeout.as_secs_f64()
                );
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared.state)
    }

    /// Applies `request` to our own view at once, then sends it.
    fn request(&mut self, request: Request, apply: impl FnOnce(&mut State)) {
        let mut state = self.state();
        if state.gone.is_some() {
            return;
        }
        apply(&mut state);
        state.sent += 1;
        drop(state);
        if let Err(e) = self.conn.write_all(&encode(&request)) {
            let mut state = self.state();
            state
                .gone
                .get_or_insert(format!("the listener went away ({e})"));
            self.shared.changed.notify_all();
        }
    }
}

impl Playback for Client {
    fn play(&mut self, piece: &Piece) -> Result<()> {
        self.send_piece(piece).map(|_| ())
    }
    fn play_open(&mut self, piece: &Piece, settled: f64) -> Result<()> {
        self.begin_piece(piece, settled).map(|_| ())
    }
    fn grow(&mut self, piece: &Piece, settled: Option<f64>) -> Result<()> {
        self.grow_piece(piece, settled)
    }
    fn stop(&mut self) {
        self.growing = None;
        self.request(Request::Stop, |state| {
            state.playing = false;
            state.clock.stop();
        });
    }
    fn set_paused(&mut self, paused: bool) {
        self.request(Request::Pause { paused }, |state| {
            state.paused = paused;
            state.clock.set_paused(paused);
        });
    }
    fn is_paused(&self) -> bool {
        self.state().paused
    }
    fn set_volume(&mut self, volume: f32) {
        let volume = clamp_volume(volume);
        self.request(Request::Volume { volume }, |state| state.volume = volume);
    }
    fn volume(&self) -> f32 {
        self.state().volume
    }
    fn seek(&mut self, seconds: f64) {
        self.request(Request::Seek { seconds }, |state| state.clock.seek(seconds));
    }
    fn position_seconds(&self) -> f64 {
        self.state().clock.position()
    }
    fn length_seconds(&self) -> f64 {
        self.state().clock.length()
    }
    fn is_playing(&self) -> bool {
        let state = self.state();
        state.id != 0 && state.playing && state.gone.is_none()
    }
    fn failure(&self) -> Option<String> {
        self.gone()
    }
    fn describe(&self) -> String {
        format!("listener at {} ({})", self.address, self.plays_on)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.state().closing = true;
        self.conn.shutdown();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// The reader thread: applies the listener's replies to the shared view until the connection
/// ends, then says why in `gone`.
fn read_replies(mut conn: Conn, mut decoder: Decoder, shared: &Shared) {
    let _ = conn.set_read_timeout(Some(Duration::from_millis(250)));
    let mut buf = vec![0u8; 16 * 1024];
    let mut heard = Instant::now();
    let why = loop {
        let got = conn.read(&mut buf);
        if lock(&shared.state).closing {
            return;
        }
        match got {
            Ok(0) => break "the listener closed the connection".to_string(),
            Ok(n) => {
                heard = Instant::now();
                decoder.push(&buf[..n]);
                let mut ended = None;
                loop {
                    match decoder.next_message::<Reply>() {
                        Ok(Some(reply)) => {
                            if let Some(why) = apply(shared, reply, heard) {
                                ended = Some(why);
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            ended = Some(format!("the listener sent {e}"));
                            break;
                        }
                    }
                }
                if let Some(why) = ended {
                    break why;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if heard.elapsed() > SILENCE_TIMEOUT {
                    break format!(
                        "the listener stopped answering (nothing for {} s)",
                        SILENCE_TIMEOUT.as_secs()
                    );
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => break format!("the listener went away ({e})"),
        }
    };
    let mut state = lock(&shared.state);
    state.gone.get_or_insert(why);
    state.playing = false;
    shared.changed.notify_all();
}

/// The listener's words, fit to print here (it is our own user's, but a terminal deserves care).
fn clean(text: &str) -> String {
    printable(text, 500)
}

/// Applies one reply; `Some(why)` when it ends the connection.
fn apply(shared: &Shared, reply: Reply, when: Instant) -> Option<String> {
    let mut state = lock(&shared.state);
    let ended = match reply {
        Reply::Status(status) => {
            take_report(&mut state, &status, when);
            None
        }
        Reply::Received {
            id,
            notes,
            seconds,
            saved,
            save_error,
            after_phrase_ms,
        } => {
            state.received.push(Received {
                id,
                notes,
                seconds,
                saved: saved.as_deref().map(clean),
                save_error: save_error.as_deref().map(clean),
            });
            if let Some(after) = answer_time(after_phrase_ms) {
                state.answer_time = Some(after);
            }
            // Only the latest confirmations are ever waited for.
            if state.received.len() > 16 {
                state.received.remove(0);
            }
            None
        }
        Reply::Started {
            id: _,
            after_phrase_ms,
        } => {
            if let Some(after) = answer_time(after_phrase_ms) {
                state.answer_time = Some(after);
            }
            None
        }
        Reply::Refused { id, message } => {
            if state.id == id {
                state.playing = false;
                state.clock.stop();
            }
            state.refused.push((id, clean(&message)));
            if state.refused.len() > 16 {
                state.refused.remove(0);
            }
            None
        }
        Reply::Error { message } => Some(format!("the listener dropped us: {}", clean(&message))),
        Reply::Hello { .. } => None,
        Reply::Listening { keys, error } => {
            state.listening = match (keys, error) {
                (Some(keys), _) => Some(Ok(clean(&keys))),
                (None, Some(why)) => Some(Err(clean(&why))),
                (None, None) => None,
            };
            None
        }
        Reply::Phrase {
            number,
            piece,
            saved,
            save_error,
        } => {
            let mut notes = piece.score.grid_notes();
            canonicalise(&mut notes);
            state.phrases.push_back(Heard {
                number,
                notes,
                saved: saved.as_deref().map(clean),
                save_error: save_error.as_deref().map(clean),
            });
            // A screen that stopped taking them keeps the latest few.
            if state.phrases.len() > 16 {
                state.phrases.pop_front();
            }
            None
        }
    };
    shared.changed.notify_all();
    ended
}

/// Milliseconds from the listener as a duration, where they make one.
fn answer_time(ms: Option<f64>) -> Option<Duration> {
    ms.filter(|ms| ms.is_finite() && *ms >= 0.0)
        .map(|ms| Duration::from_secs_f64(ms.min(1e9) / 1e3))
}

/// Whether `piece` can travel: the listener would refuse it too, so say so here, before
/// sending it across.
fn check_travels(piece: &Piece) -> Result<()> {
    check_length(&piece.timed_notes())?;
    check_piece(piece).map_err(|why| anyhow!("it cannot travel to a listener: {why}"))
}

/// Takes the listener's clock from a report that has seen all our requests.
fn take_report(state: &mut State, status: &Status, when: Instant) {
    if status.handled < state.sent {
        return;
    }
    state.volume = status.volume;
    if status.id == state.id && state.id != 0 {
        state.playing = status.playing;
        state.paused = status.paused;
        state.clock.anchor(
            status.position,
            status.playing && !status.paused,
            status.length,
            when,
        );
    }
}

/// Where sound goes from the server side: `--listener` (`flag`), else `$NANOTUNE_LISTENER`
/// (`env`), else the default socket path if a listener answers there. A listener named by the
/// flag or the variable that does not answer is an error; silence at the default path is not.
pub fn locate_listener(flag: Option<&str>, env: Option<String>) -> Result<Option<Client>> {
    locate_listener_at(flag, env, &default_socket_path())
}

/// [`locate_listener`] with the default path given (tests use their own).
pub fn locate_listener_at(
    flag: Option<&str>,
    env: Option<String>,
    default: &Path,
) -> Result<Option<Client>> {
    let named = match (flag, env.as_deref().map(str::trim)) {
        (Some(flag), _) => Some((flag.to_string(), format!("--listener {flag}"))),
        (None, Some(env)) if !env.is_empty() => Some((
            env.to_string(),
            format!("${}={env}", super::address::LISTENER_ENV),
        )),
        _ => None,
    };
    if let Some((text, source)) = named {
        let address = Address::parse(&text).with_context(|| source.clone())?;
        return Client::connect(&address)
            .map(Some)
            .with_context(|| format!("no listener answers at {source}"));
    }
    if std::fs::symlink_metadata(default).is_err() {
        return Ok(None);
    }
    Ok(Client::connect(&Address::Unix(default.to_path_buf())).ok())
}
