//! Playback through cpal, and what to do where there is no sound card.
//!
//! Call [`probe`] before any terminal screen is drawn: it silences libasound's error printing
//! (which would garble a TUI) and says in one line whether audio can be played. [`Player`] plays
//! notes with its [`Voice`] (the built-in one unless [`Player::set_voice`] says otherwise): a
//! worker thread renders block by block into a lock-free ring buffer that the audio callback
//! reads, so playback starts once the first second is rendered; the callback never blocks or
//! allocates (it only reads atomics and the pre-allocated ring).
//!
//! ```no_run
//! use nanotune::sound::audio::Player;
//! # let notes = vec![];
//! match Player::new() {
//!     Ok(mut player) => {
//!         player.play(&notes).expect("a piece under two hours");
//!         let _playhead = player.position_seconds();
//!     }
//!     Err(no_audio) => eprintln!("{no_audio}"), // e.g. save a WAV instead
//! }
//! ```

use crate::sound::format::Format;
use crate::sound::renderer::Renderer;
use crate::sound::timed::check_length;
use crate::sound::timed::TimedNote;
use crate::sound::voice::Voice;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SizedSample};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Seconds rendered before playback starts.
const PREBUFFER_SECONDS: f64 = 1.0;
/// Seconds the ring buffer holds.
const RING_SECONDS: f64 = 3.0;

/// Whether sound can be played here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AudioStatus {
    /// An output device opened and started a stream.
    Available {
        device: String,
        sample_rate: u32,
        channels: u16,
    },
    /// No usable output device; the reason, in one line.
    Unavailable(String),
}

impl AudioStatus {
    pub fn is_available(&self) -> bool {
        matches!(self, AudioStatus::Available { .. })
    }
}

impl std::fmt::Display for AudioStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AudioStatus::Available {
                device,
                sample_rate,
                channels,
            } => write!(f, "audio: {device}, {sample_rate} Hz, {channels} channels"),
            AudioStatus::Unavailable(why) => write!(f, "no audio device: {why}"),
        }
    }
}

/// There is no sound card (or it could not be opened); the reason, in one line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no audio device: {0}")]
pub struct NoAudio(pub String);

#[cfg(target_os = "linux")]
pub(crate) mod quiet {
    //! Keeps libasound from writing to stderr.
    use std::os::fd::AsRawFd;
    use std::os::raw::{c_char, c_int};

    // The handler is variadic in C; ours ignores every argument, which is sound to call with any.
    type ErrorHandler = Option<unsafe extern "C" fn(*const c_char, c_int, *const c_char, c_int)>;

    extern "C" {
        fn snd_lib_error_set_handler(handler: ErrorHandler) -> c_int;
        fn dup(fd: c_int) -> c_int;
        fn dup2(from: c_int, to: c_int) -> c_int;
        fn close(fd: c_int) -> c_int;
    }

    unsafe extern "C" fn ignore(_: *const c_char, _: c_int, _: *const c_char, _: c_int) {}

    /// Installs a no-op ALSA error handler for the rest of the process (once).
    pub fn silence_alsa() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        // SAFETY: sets a process-wide function pointer in libasound (linked through cpal).
        ONCE.call_once(|| unsafe {
            snd_lib_error_set_handler(Some(ignore));
        });
    }

    /// Runs `f` with stderr pointed at /dev/null (for anything else the audio stack prints
    /// while probing), then restores it.
    pub fn without_stderr<T>(f: impl FnOnce() -> T) -> T {
        let null = std::fs::OpenOptions::new().write(true).open("/dev/null");
        // SAFETY: plain descriptor calls on fd 2 and descriptors we own.
        let saved = match &null {
            Ok(null) => unsafe {
                let saved = dup(2);
                if saved >= 0 {
                    dup2(null.as_raw_fd(), 2);
                }
                saved
            },
            Err(_) => -1,
        };
        let out = f();
        if saved >= 0 {
            unsafe {
                dup2(saved, 2);
                close(saved);
            }
        }
        out
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) mod quiet {
    pub fn silence_alsa() {}
    pub fn without_stderr<T>(f: impl FnOnce() -> T) -> T {
        f()
    }
}

/// Says whether sound can be played, trying the default output device for real (a card-less
/// Linux machine has a "default" device that fails when opened). Prints nothing: libasound's
/// errors are silenced for the rest of the process. Call it before drawing a TUI.
pub fn probe() -> AudioStatus {
    match open_stream(Arc::new(Shared::new(Format::STEREO_44K))) {
        Ok(opened) => AudioStatus::Available {
            device: opened.device,
            sample_rate: opened.sample_rate,
            channels: opened.channels,
        },
        Err(NoAudio(why)) => AudioStatus::Unavailable(why),
    }
}

/// State shared by the player, its render worker and the audio callback: atomics and a
/// pre-allocated ring of samples (f32 bits), so the callback neither locks nor allocates.
struct Shared {
    ring: Box<[AtomicU32]>,
    /// Ring capacity in frames.
    capacity: u64,
    channels: usize,
    sample_rate: u32,
    /// Frames written by the worker / read by the callback in this session.
    written: AtomicU64,
    read: AtomicU64,
    /// Frames of the current session's piece.
    total: AtomicU64,
    /// The worker has written the whole piece.
    rendered: AtomicBool,
    /// The piece is still being made: more of it may come ([`Player::extend`]).
    open: AtomicBool,
    /// The worker has written all that is made of the piece so far and waits for more.
    waiting: AtomicBool,
    /// A session is loaded (play called, stop not).
    active: AtomicBool,
    paused: AtomicBool,
    /// The prebuffer has filled and the callback is consuming.
    started: AtomicBool,
    volume: AtomicU32,
    /// Session resets asked by `play` and done by the callback (which owns `read`).
    reset_asked: AtomicU64,
    reset_done: AtomicU64,
    /// The stream reported an error (device gone).
    failed: AtomicBool,
}

impl Shared {
    fn new(format: Format) -> Shared {
        let capacity = (RING_SECONDS * format.sample_rate as f64) as u64;
        let channels = format.channels as usize;
        Shared {
            ring: (0..capacity as usize * channels)
                .map(|_| AtomicU32::new(0))
                .collect(),
            capacity,
            channels,
            sample_rate: format.sample_rate,
            written: AtomicU64::new(0),
            read: AtomicU64::new(0),
            total: AtomicU64::new(0),
            rendered: AtomicBool::new(false),
            open: AtomicBool::new(false),
            waiting: AtomicBool::new(false),
            active: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            started: AtomicBool::new(false),
            volume: AtomicU32::new(1.0f32.to_bits()),
            reset_asked: AtomicU64::new(0),
            reset_done: AtomicU64::new(0),
            failed: AtomicBool::new(false),
        }
    }

    /// The audio callback: fills `out` (interleaved, `device_channels` per frame).
    fn fill<T: SizedSample + FromSample<f32>>(&self, out: &mut [T], device_channels: usize) {
        let asked = self.reset_asked.load(Ordering::Acquire);
        if asked != self.reset_done.load(Ordering::Relaxed) {
            // No worker runs while a reset is pending: both counters are ours to clear.
            self.read.store(0, Ordering::Relaxed);
            self.written.store(0, Ordering::Relaxed);
            self.started.store(false, Ordering::Relaxed);
            self.reset_done.store(asked, Ordering::Release);
        }
        let silence = T::from_sample(0.0f32);
        if !self.active.load(Ordering::Acquire) || self.paused.load(Ordering::Relaxed) {
            out.fill(silence);
            return;
        }
        let written = self.written.load(Ordering::Acquire);
        let mut read = self.read.load(Ordering::Relaxed);
        if !self.started.load(Ordering::Relaxed) {
            let total = self.total.load(Ordering::Relaxed);
            let prebuffer = (PREBUFFER_SECONDS * self.sample_rate as f64) as u64;
            // All of it, or all that is made of it so far, counts as a full prebuffer.
            let all_there =
                self.rendered.load(Ordering::Acquire) || self.waiting.load(Ordering::Acquire);
            if written - read >= prebuffer.min(total) || all_there {
                self.started.store(true, Ordering::Relaxed);
            } else {
                out.fill(silence);
                return;
            }
        }
        let volume = f32::from_bits(self.volume.load(Ordering::Relaxed));
        let channels = self.channels;
        for frame in out.chunks_mut(device_channels.max(1)) {
            if read < written {
                let at = (read % self.capacity) as usize * channels;
                let left = f32::from_bits(self.ring[at].load(Ordering::Relaxed)) * volume;
                let right = if channels == 2 {
                    f32::from_bits(self.ring[at + 1].load(Ordering::Relaxed)) * volume
                } else {
                    left
                };
                for (c, sample) in frame.iter_mut().enumerate() {
                    *sample = T::from_sample(match (c, device_channels) {
                        (_, 1) => 0.5 * (left + right),
                        (0, _) => left,
                        (1, _) => right,
                        _ => 0.0,
                    });
                }
                read += 1;
            } else {
                frame.fill(silence);
            }
        }
        self.read.store(read, Ordering::Release);
    }
}

struct Opened {
    stream: cpal::Stream,
    device: String,
    sample_rate: u32,
    channels: u16,
}

/// Opens and starts the default output stream feeding from `shared` (with stderr quiet).
fn open_stream(shared: Arc<Shared>) -> Result<Opened, NoAudio> {
    quiet::silence_alsa();
    quiet::without_stderr(|| {
        let host = cpal::default_host();
        let device = host
            .default_output_device()
            .ok_or_else(|| NoAudio("no default output device".into()))?;
        let name = device
            .description()
            .map(|d| d.to_string())
            .unwrap_or_else(|_| "default".into());
        let supported = device
            .default_output_config()
            .map_err(|e| NoAudio(format!("{name}: {e}")))?;
        let config = supported.config();
        let channels = config.channels as usize;
        let err_flag = shared.clone();
        let on_error = move |_e: cpal::StreamError| err_flag.failed.store(true, Ordering::Relaxed);
        macro_rules! build {
            ($t:ty) => {{
                let shared = shared.clone();
                device.build_output_stream(
                    &config,
                    move |data: &mut [$t], _: &cpal::OutputCallbackInfo| {
                        shared.fill(data, channels)
                    },
                    on_error,
                    None,
                )
            }};
        }
        let stream = match supported.sample_format() {
            cpal::SampleFormat::F32 => build!(f32),
            cpal::SampleFormat::I16 => build!(i16),
            cpal::SampleFormat::U16 => build!(u16),
            cpal::SampleFormat::I32 => build!(i32),
            cpal::SampleFormat::F64 => build!(f64),
            other => {
                return Err(NoAudio(format!(
                    "{name}: unsupported sample format {other}"
                )))
            }
        }
        .map_err(|e| NoAudio(format!("{name}: {e}")))?;
        stream.play().map_err(|e| NoAudio(format!("{name}: {e}")))?;
        Ok(Opened {
            stream,
            device: name,
            sample_rate: config.sample_rate,
            channels: config.channels,
        })
    })
}

/// Plays notes on the default output device. Create it once (before the TUI draws), then
/// [`play`](Player::play) any number of pieces; dropping it stops the sound.
pub struct Player {
    shared: Arc<Shared>,
    _stream: cpal::Stream,
    device: String,
    format: Format,
    voice: Voice,
    worker: Option<Worker>,
}

/// The render worker of the piece playing: how to cancel it, and how to hand it more of a piece
/// still being made.
struct Worker {
    cancel: Arc<AtomicBool>,
    more: Sender<More>,
    handle: JoinHandle<()>,
}

/// More of a piece being made: its notes, and where it is now whole (`None`: all of it is in).
struct More {
    notes: Vec<TimedNote>,
    settled: Option<f64>,
}

impl Player {
    /// Opens the default output device, or says why there is none (printing nothing).
    pub fn new() -> Result<Player, NoAudio> {
        let status = probe();
        let (sample_rate, channels) = match status {
            AudioStatus::Available {
                sample_rate,
                channels,
                ..
            } => (sample_rate, channels),
            AudioStatus::Unavailable(why) => return Err(NoAudio(why)),
        };
        let format = Format::new(sample_rate, channels.min(2))
            .or_else(|_| Format::new(44_100, 2))
            .map_err(|e| NoAudio(e.to_string()))?;
        let shared = Arc::new(Shared::new(format));
        let opened = open_stream(shared.clone())?;
        Ok(Player {
            shared,
            _stream: opened.stream,
            device: opened.device,
            format,
            voice: Voice::Builtin,
            worker: None,
        })
    }

    /// The output device's name.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The format the synth renders in (the device's rate; mono or stereo).
    pub fn format(&self) -> Format {
        self.format
    }

    /// The voice the next [`play`](Player::play) uses, from then on (what plays now goes on
    /// as it was). An error, and no change, where the voice cannot render at the device's rate.
    pub fn set_voice(&mut self, voice: Voice) -> anyhow::Result<()> {
        voice.check_format(self.format)?;
        self.voice = voice;
        Ok(())
    }

    /// The voice that plays.
    pub fn voice(&self) -> &Voice {
        &self.voice
    }

    /// Starts playing `notes` from the beginning (stopping what played before). Sound starts
    /// once the first second is rendered; the rest renders on a worker thread as it plays.
    /// Time notes with [`crate::sound::timed::from_grid`] (at a BPM) or
    /// [`crate::sound::timed::from_midi`]. An error, and silence, for a piece too long to play.
    pub fn play(&mut self, notes: &[TimedNote]) -> anyhow::Result<()> {
        self.stop();
        let renderer = self.voice.renderer(notes, self.format)?;
        self.worker = Some(start_session(&self.shared, renderer));
        Ok(())
    }

    /// Starts a piece still being made: `notes` are all of it before `settled` seconds, and the
    /// rest comes with [`Player::extend`]. It sounds once the first second is there (or all of
    /// it); where more is late, playback waits for it rather than skip it.
    pub fn play_open(&mut self, notes: &[TimedNote], settled: f64) -> anyhow::Result<()> {
        self.stop();
        let renderer = self.voice.renderer(notes, self.format)?.hold_at(settled);
        self.worker = Some(start_session(&self.shared, renderer));
        Ok(())
    }

    /// More of the piece started by [`Player::play_open`]: notes starting at or after the last
    /// settled point, and where it is whole now (`None`: it is all here). An error, and no
    /// change, for notes that would make it longer than a piece may last.
    pub fn extend(&mut self, notes: &[TimedNote], settled: Option<f64>) -> anyhow::Result<()> {
        check_length(notes)?;
        if let Some(worker) = &self.worker {
            let more = More {
                notes: notes.to_vec(),
                settled,
            };
            // A worker that has ended has nothing left to extend.
            let _ = worker.more.send(more);
        }
        Ok(())
    }

    /// Stops the sound and forgets the piece.
    pub fn stop(&mut self) {
        self.shared.active.store(false, Ordering::Release);
        if let Some(worker) = self.worker.take() {
            worker.cancel.store(true, Ordering::Relaxed);
            let _ = worker.handle.join();
        }
    }

    /// Pauses, or resumes where it paused. Returns whether it is now paused.
    pub fn toggle_pause(&self) -> bool {
        !self.shared.paused.fetch_xor(true, Ordering::AcqRel)
    }

    /// Whether playback is paused.
    pub fn is_paused(&self) -> bool {
        self.shared.paused.load(Ordering::Relaxed)
    }

    /// Sets the volume: 0 is silent, 1 as rendered (clamped to 0..=2).
    pub fn set_volume(&self, volume: f32) {
        let v = if volume.is_finite() {
            volume.clamp(0.0, 2.0)
        } else {
            1.0
        };
        self.shared.volume.store(v.to_bits(), Ordering::Relaxed);
    }

    /// The volume set last.
    pub fn volume(&self) -> f32 {
        f32::from_bits(self.shared.volume.load(Ordering::Relaxed))
    }

    /// Seconds of the piece handed to the device so far (for a playhead).
    pub fn position_seconds(&self) -> f64 {
        let s = &self.shared;
        if !s.active.load(Ordering::Acquire)
            || s.reset_done.load(Ordering::Acquire) != s.reset_asked.load(Ordering::Acquire)
        {
            return 0.0;
        }
        self.shared.read.load(Ordering::Acquire) as f64 / self.format.sample_rate as f64
    }

    /// Seconds the current piece lasts (music plus release).
    pub fn length_seconds(&self) -> f64 {
        self.shared.total.load(Ordering::Relaxed) as f64 / self.format.sample_rate as f64
    }

    /// Whether a piece is loaded and not yet played to its end (true while paused).
    pub fn is_playing(&self) -> bool {
        let s = &self.shared;
        s.active.load(Ordering::Acquire)
            && !s.failed.load(Ordering::Relaxed)
            && (s.reset_done.load(Ordering::Acquire) != s.reset_asked.load(Ordering::Acquire)
                || s.open.load(Ordering::Acquire)
                || s.read.load(Ordering::Acquire) < s.total.load(Ordering::Relaxed))
    }

    /// Whether the device reported an error since it opened (e.g. it was unplugged).
    pub fn failed(&self) -> bool {
        self.shared.failed.load(Ordering::Relaxed)
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Loads a new piece: asks the callback to reset the ring, and starts the render worker (no
/// worker may be running).
fn start_session(shared: &Arc<Shared>, renderer: Renderer) -> Worker {
    shared
        .total
        .store(renderer.total_frames(), Ordering::Relaxed);
    shared.rendered.store(false, Ordering::Relaxed);
    shared.open.store(!renderer.is_whole(), Ordering::Release);
    shared.waiting.store(false, Ordering::Release);
    shared.paused.store(false, Ordering::Relaxed);
    let ticket = shared.reset_asked.fetch_add(1, Ordering::AcqRel) + 1;
    shared.active.store(true, Ordering::Release);
    let cancel = Arc::new(AtomicBool::new(false));
    let (more, arrives) = channel();
    let handle = {
        let shared = shared.clone();
        let cancel = cancel.clone();
        std::thread::Builder::new()
            .name("nanotune-render".into())
            .spawn(move || render_worker(&shared, renderer, ticket, &cancel, &arrives))
            .expect("spawning the render thread")
    };
    Worker {
        cancel,
        more,
        handle,
    }
}

/// Renders into the ring as fast as there is room, until the piece is done or cancelled; a
/// piece still being made is rendered as far as it is whole, then waits for more.
fn render_worker(
    shared: &Shared,
    mut renderer: Renderer,
    ticket: u64,
    cancel: &AtomicBool,
    arrives: &Receiver<More>,
) {
    // Wait for the callback to reset the ring for this session.
    while shared.reset_done.load(Ordering::Acquire) != ticket {
        if cancel.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let grow = |renderer: &mut Renderer, more: More| {
        // Checked by `Player::extend` already: an error here changes nothing.
        let _ = renderer.append(&more.notes, more.settled);
        shared
            .total
            .store(renderer.total_frames(), Ordering::Relaxed);
        shared.open.store(!renderer.is_whole(), Ordering::Release);
        shared.waiting.store(false, Ordering::Release);
    };
    let channels = shared.channels;
    let mut block = vec![0.0f32; 1024 * channels];
    let mut written = 0u64;
    loop {
        for more in arrives.try_iter() {
            grow(&mut renderer, more);
        }
        let n = renderer.fill(&mut block);
        if n == 0 {
            if renderer.is_whole() {
                break;
            }
            shared.waiting.store(true, Ordering::Release);
            match arrives.recv_timeout(Duration::from_millis(5)) {
                Ok(more) => grow(&mut renderer, more),
                Err(RecvTimeoutError::Timeout) => {}
                // The player is gone: nothing more will come.
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if cancel.load(Ordering::Relaxed) {
                return;
            }
            continue;
        }
        // Wait for room.
        while written + n as u64 > shared.read.load(Ordering::Acquire) + shared.capacity {
            if cancel.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        for (i, frame) in block[..n * channels].chunks_exact(channels).enumerate() {
            let at = ((written + i as u64) % shared.capacity) as usize * channels;
            for (c, &s) in frame.iter().enumerate() {
                shared.ring[at + c].store(s.to_bits(), Ordering::Relaxed);
            }
        }
        written += n as u64;
        shared.written.store(written, Ordering::Release);
        if cancel.load(Ordering::Relaxed) {
            return;
        }
    }
    shared.rendered.store(true, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sound::renderer::render;

    /// Drives the callback by hand, as a device would, in 441-frame periods.
    fn pull(shared: &Shared, periods: usize, device_channels: usize) -> Vec<f32> {
        let mut out = Vec::new();
        let mut buf = vec![0.0f32; 441 * device_channels];
        for _ in 0..periods {
            shared.fill(&mut buf, device_channels);
            out.extend_from_slice(&buf);
        }
        out
    }

    #[test]
    fn callback_plays_the_rendering_with_pause_and_volume() {
        let format = Format::STEREO_44K;
        let notes = [
            TimedNote {
                start: 0.0,
                duration: 2.0,
                pitch: 60,
                velocity: 90,
            },
            TimedNote {
                start: 3.5,
                duration: 1.0,
                pitch: 72,
                velocity: 90,
            },
        ];
        let expected = render(&notes, format).unwrap();
        let shared = Arc::new(Shared::new(format));
        let worker = start_session(&shared, Renderer::new(&notes, format).unwrap()).handle;
        let mut got = Vec::new();
        // Until the prebuffer fills, silence and no progress.
        while !shared.started.load(Ordering::Relaxed) {
            let out = pull(&shared, 1, 2);
            if shared.started.load(Ordering::Relaxed) {
                got.extend(out);
            } else {
                assert!(out.iter().all(|&s| s == 0.0));
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        got.extend(pull(&shared, 50, 2));
        // Paused: silence, the position holds.
        shared.paused.store(true, Ordering::Relaxed);
        let at = shared.read.load(Ordering::Relaxed);
        assert!(pull(&shared, 5, 2).iter().all(|&s| s == 0.0));
        assert_eq!(shared.read.load(Ordering::Relaxed), at);
        shared.paused.store(false, Ordering::Relaxed);
        while shared.read.load(Ordering::Relaxed) < shared.total.load(Ordering::Relaxed) {
            got.extend(pull(&shared, 1, 2));
            std::thread::sleep(Duration::from_micros(200));
        }
        worker.join().unwrap();
        // Underruns would show as zeros in the middle; there are none, and the samples match.
        assert_eq!(&got[..expected.len()], &expected[..]);
        assert!(got[expected.len()..].iter().all(|&s| s == 0.0));

        // A second piece at half volume on a mono device.
        shared.volume.store(0.5f32.to_bits(), Ordering::Relaxed);
        let worker = start_session(&shared, Renderer::new(&notes[..1], format).unwrap()).handle;
        // The first period resets the ring (silence); the worker then renders it all.
        assert!(pull(&shared, 1, 1).iter().all(|&s| s == 0.0));
        worker.join().unwrap();
        let out = pull(&shared, 2, 1);
        let expected = render(&notes[..1], format).unwrap();
        for (i, &s) in out.iter().enumerate() {
            let mono = 0.5 * (expected[2 * i] + expected[2 * i + 1]);
            assert!((s - 0.5 * mono).abs() < 1e-6);
        }
    }

    #[test]
    fn a_piece_being_made_plays_as_it_comes_and_waits_for_more() {
        let format = Format::STEREO_44K;
        let notes: Vec<TimedNote> = (0..12)
            .map(|i| TimedNote::new(i as f64 * 0.2, 0.3, 60 + i as u8, 90))
            .collect();
        let expected = render(&notes, format).unwrap();
        let shared = Arc::new(Shared::new(format));
        // The first second of it is made.
        let first: Vec<TimedNote> = notes.iter().filter(|n| n.start < 1.0).copied().collect();
        let renderer = Renderer::new(&first, format).unwrap().hold_at(1.0);
        let worker = start_session(&shared, renderer);
        assert!(shared.open.load(Ordering::Acquire));
        let mut got = Vec::new();
        // One period; only the frames that moved the playhead are the piece's (the rest is
        // silence while it waits). Returns whether it moved.
        let play = |got: &mut Vec<f32>| {
            let before = shared.read.load(Ordering::Relaxed) as usize;
            let out = pull(&shared, 1, 2);
            let moved = shared.read.load(Ordering::Relaxed) as usize - before;
            got.extend_from_slice(&out[..2 * moved]);
            std::thread::sleep(Duration::from_micros(200));
            moved > 0
        };
        // It plays up to where it is made, then holds: silence, and the playhead waits.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            assert!(std::time::Instant::now() < deadline, "it never held");
            let waiting = shared.waiting.load(Ordering::Acquire);
            if !play(&mut got) && waiting && shared.started.load(Ordering::Relaxed) {
                break;
            }
        }
        let held = shared.read.load(Ordering::Relaxed);
        assert!(held > 40_000, "it played what was made: {held}");
        let waiting = pull(&shared, 20, 2);
        assert!(waiting.iter().all(|&s| s == 0.0));
        assert_eq!(shared.read.load(Ordering::Relaxed), held);
        assert!(held < 44_100, "not past the second made: {held}");
        // The rest comes: it plays on from where it held, to the end.
        let rest: Vec<TimedNote> = notes.iter().filter(|n| n.start >= 1.0).copied().collect();
        worker
            .more
            .send(More {
                notes: rest,
                settled: None,
            })
            .unwrap();
        while shared.read.load(Ordering::Relaxed) < shared.total.load(Ordering::Relaxed)
            || shared.open.load(Ordering::Acquire)
        {
            assert!(std::time::Instant::now() < deadline, "it never ended");
            play(&mut got);
        }
        worker.handle.join().unwrap();
        assert_eq!(got.len(), expected.len());
        assert_eq!(got, expected, "no sample lost or added where it waited");
    }
}
