//! The calls every sound output answers, mirroring [`Player`]: the sound card here, a listener
//! over a socket ([`crate::sound::listen::Client`]), a MIDI port, or a silent clock.

use crate::sound::audio::Player;
use crate::sound::piece::Piece;
use crate::sound::timed::{check_length, TimedNote};
use crate::sound::voice::Voice;
use anyhow::Result;
use std::time::Instant;

/// Something that plays pieces. Every call returns at once; only [`Playback::play`] can refuse (a
/// piece too long to play, or one a listener turned down), and a playback that stopped working
/// later says why in [`Playback::failure`].
pub trait Playback: Send {
    /// Plays `piece` from its start, replacing what played before; a piece that cannot play is an
    /// error in one line, and what played before stops.
    fn play(&mut self, piece: &Piece) -> Result<()>;
    /// Stops the sound and forgets the piece.
    fn stop(&mut self);
    fn set_paused(&mut self, paused: bool);
    fn is_paused(&self) -> bool;
    /// 0 is silent, 1 as rendered (clamped to 0..=2).
    fn set_volume(&mut self, volume: f32);
    fn volume(&self) -> f32;
    /// Continues from `seconds` into the piece (paused stays paused).
    fn seek(&mut self, seconds: f64);
    /// Seconds into the piece (for a playhead).
    fn position_seconds(&self) -> f64;
    /// Seconds the piece lasts, its last notes' release included.
    fn length_seconds(&self) -> f64;
    /// Whether a piece is loaded and not yet played to its end (true while paused).
    fn is_playing(&self) -> bool;
    /// Why it stopped working (a device unplugged, a listener gone), if it did.
    fn failure(&self) -> Option<String>;
    /// Where the sound goes, in a few words.
    fn describe(&self) -> String;

    /// Starts `piece`, which is still being made, from its start: it holds all of the piece
    /// before `settled` quarter notes (no note still to come starts earlier), and
    /// [`Playback::grow`] brings the rest. An output that cannot take a piece in parts stops
    /// what it plays, and plays this one from its start once it is whole.
    fn play_open(&mut self, piece: &Piece, settled: f64) -> Result<()> {
        let _ = (piece, settled);
        self.stop();
        Ok(())
    }

    /// The piece started by [`Playback::play_open`], grown (its notes so far, those given
    /// before among them): whole before `settled` quarter notes, or all of it (`None`).
    fn grow(&mut self, piece: &Piece, settled: Option<f64>) -> Result<()> {
        match settled {
            None => self.play(piece),
            Some(_) => Ok(()),
        }
    }

    /// The voice for the next play (the built-in one or a SoundFont); an output that renders
    /// elsewhere (a listener, a MIDI port) keeps its own.
    fn set_voice(&mut self, _voice: &Voice) -> Result<()> {
        Ok(())
    }

    /// Pauses, or resumes where it paused; returns whether it is now paused.
    fn toggle_pause(&mut self) -> bool {
        let paused = !self.is_paused();
        self.set_paused(paused);
        paused
    }
}

/// Seconds `piece` sounds through the built-in voice (the last note-off plus its release).
pub fn sounding_seconds(piece: &Piece) -> f64 {
    Voice::Builtin.length_seconds(&piece.timed_notes())
}

/// How much of a piece being made an output has taken: its first notes, in the piece's order
/// (by start), up to where the piece was settled.
#[derive(Clone, Debug, Default)]
pub struct Growing {
    taken: usize,
}

impl Growing {
    /// The notes of `piece` (the piece so far) to take now: those not taken yet that start
    /// before `settled` quarter notes, or all the rest once it is whole (`None`). A piece only
    /// grows at its end, so what was taken stays the same.
    pub fn take(&mut self, piece: &Piece, settled: Option<f64>) -> Piece {
        let notes = &piece.score.notes;
        let until = match settled {
            None => notes.len(),
            Some(q) => notes.partition_point(|n| n.start < q),
        };
        let from = self.taken.min(notes.len());
        self.taken = until.max(from);
        piece.with_notes(notes[from..self.taken].to_vec())
    }

    /// Notes taken so far.
    pub fn taken(&self) -> usize {
        self.taken
    }
}

/// Clamps a volume as [`Player::set_volume`] does.
pub fn clamp_volume(volume: f32) -> f32 {
    if volume.is_finite() {
        volume.clamp(0.0, 2.0)
    } else {
        1.0
    }
}

/// A piece's timeline by the wall clock: where playback is, paused or running.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Seconds into the piece at `since` (or while paused).
    at: f64,
    /// When the clock last started running; `None` while paused or stopped.
    since: Option<Instant>,
    length: f64,
    loaded: bool,
}

impl Clock {
    /// Starts a piece of `length` seconds from 0.
    pub fn start(&mut self, length: f64) {
        *self = Clock {
            at: 0.0,
            since: Some(Instant::now()),
            length: length.max(0.0),
            loaded: true,
        };
    }

    pub fn stop(&mut self) {
        *self = Clock::default();
    }

    pub fn position(&self) -> f64 {
        let running = self.since.map_or(0.0, |s| s.elapsed().as_secs_f64());
        (self.at + running).min(self.length)
    }

    pub fn length(&self) -> f64 {
        self.length
    }

    /// The piece grew to `length` seconds (a piece being made): where it is stays.
    pub fn lengthen(&mut self, length: f64) {
        if self.loaded && length > self.length {
            if self.since.is_some() {
                self.at = self.position();
                self.since = Some(Instant::now());
            }
            self.length = length;
        }
    }

    pub fn is_paused(&self) -> bool {
        self.loaded && self.since.is_none()
    }

    pub fn set_paused(&mut self, paused: bool) {
        if !self.loaded || paused == self.is_paused() {
            return;
        }
        if paused {
            self.at = self.position();
            self.since = None;
        } else {
            self.since = Some(Instant::now());
        }
    }

    pub fn seek(&mut self, seconds: f64) {
        if !self.loaded {
            return;
        }
        self.at = seconds.clamp(0.0, self.length);
        if self.since.is_some() {
            self.since = Some(Instant::now());
        }
    }

    /// Sets the clock to what a far end reported at `when`: `position`, running or not.
    pub fn anchor(&mut self, position: f64, running: bool, length: f64, when: Instant) {
        self.loaded = true;
        self.length = length.max(0.0);
        self.at = position.clamp(0.0, self.length);
        self.since = running.then_some(when);
    }

    /// Loaded and not at its end (true while paused).
    pub fn is_running(&self) -> bool {
        self.loaded && self.position() < self.length
    }
}

/// No sound at all, only the clock: where there is no sound card, a listener still receives,
/// saves and reports a position, so the server's playhead moves as the piece would.
pub struct SilentPlayback {
    clock: Clock,
    /// The piece is still being made: it plays on (waiting at its end) until it is whole.
    open: bool,
    volume: f32,
    why: String,
}

impl SilentPlayback {
    /// `why`: the one line saying why there is no sound.
    pub fn new(why: &str) -> SilentPlayback {
        SilentPlayback {
            clock: Clock::default(),
            open: false,
            volume: 1.0,
            why: why.to_string(),
        }
    }
}

impl Playback for SilentPlayback {
    fn play(&mut self, piece: &Piece) -> Result<()> {
        self.clock.stop();
        self.open = false;
        check_length(&piece.timed_notes())?;
        self.clock.start(sounding_seconds(piece));
        Ok(())
    }
    fn play_open(&mut self, piece: &Piece, settled: f64) -> Result<()> {
        self.play(piece)?;
        self.clock.lengthen(piece.score.seconds_at(settled));
        self.open = true;
        Ok(())
    }
    fn grow(&mut self, piece: &Piece, settled: Option<f64>) -> Result<()> {
        if !self.open {
            return Ok(());
        }
        check_length(&piece.timed_notes())?;
        self.clock.lengthen(sounding_seconds(piece));
        match settled {
            Some(settled) => self.clock.lengthen(piece.score.seconds_at(settled)),
            None => self.open = false,
        }
        Ok(())
    }
    fn stop(&mut self) {
        self.clock.stop();
        self.open = false;
    }
    fn set_paused(&mut self, paused: bool) {
        self.clock.set_paused(paused);
    }
    fn is_paused(&self) -> bool {
        self.clock.is_paused()
    }
    fn set_volume(&mut self, volume: f32) {
        self.volume = clamp_volume(volume);
    }
    fn volume(&self) -> f32 {
        self.volume
    }
    fn seek(&mut self, seconds: f64) {
        self.clock.seek(seconds);
    }
    fn position_seconds(&self) -> f64 {
        self.clock.position()
    }
    fn length_seconds(&self) -> f64 {
        self.clock.length()
    }
    fn is_playing(&self) -> bool {
        self.open || self.clock.is_running()
    }
    fn failure(&self) -> Option<String> {
        None
    }
    fn describe(&self) -> String {
        format!("no sound card ({}): receiving and saving only", self.why)
    }
}

/// The sound card, through [`Player`] and the synth. Seeking restarts the piece from the
/// notes still to sound at that point ([`Piece::timed_notes_from`]).
pub struct CardPlayback {
    player: Player,
    /// The piece as far as the player has it (for a piece being made, the notes taken so far).
    piece: Option<Piece>,
    /// For a piece being made: how much of it was taken, and where it is whole (quarters).
    growing: Option<(Growing, f64)>,
    /// Where in the piece the player's rendering starts.
    offset: f64,
}

impl CardPlayback {
    pub fn new(player: Player) -> CardPlayback {
        CardPlayback {
            player,
            piece: None,
            growing: None,
            offset: 0.0,
        }
    }

    /// The output device's name.
    pub fn device(&self) -> &str {
        self.player.device()
    }

    /// Starts the player on what is here of the piece from `seconds` on (whole or not).
    fn start_from(&mut self, seconds: f64) -> Result<()> {
        let Some(piece) = &self.piece else {
            return Ok(());
        };
        let notes = piece.timed_notes_from(seconds);
        match &self.growing {
            Some((_, settled)) => {
                let settled = piece.score.seconds_at(*settled) - seconds;
                self.player.play_open(&notes, settled.max(0.0))?;
            }
            None => self.player.play(&notes)?,
        }
        self.offset = seconds;
        Ok(())
    }
}

impl Playback for CardPlayback {
    fn play(&mut self, piece: &Piece) -> Result<()> {
        self.stop();
        self.player.play(&piece.timed_notes())?;
        self.piece = Some(piece.clone());
        Ok(())
    }
    fn play_open(&mut self, piece: &Piece, settled: f64) -> Result<()> {
        self.stop();
        let mut growing = Growing::default();
        let taken = growing.take(piece, Some(settled));
        self.player
            .play_open(&taken.timed_notes(), piece.score.seconds_at(settled))?;
        self.piece = Some(taken);
        self.growing = Some((growing, settled));
        Ok(())
    }
    fn grow(&mut self, piece: &Piece, settled: Option<f64>) -> Result<()> {
        let (Some(have), Some((growing, _))) = (&mut self.piece, &mut self.growing) else {
            return Ok(());
        };
        let more = growing.take(piece, settled);
        // In the player's time, which starts where it was last sought.
        let offset = self.offset;
        let notes: Vec<TimedNote> = more
            .timed_notes()
            .into_iter()
            .filter(|n| n.start >= offset)
            .map(|n| TimedNote {
                start: n.start - offset,
                ..n
            })
            .collect();
        let whole_at = settled.map(|q| (piece.score.seconds_at(q) - offset).max(0.0));
        self.player.extend(&notes, whole_at)?;
        have.score.notes.extend(more.score.notes);
        match (settled, &mut self.growing) {
            (Some(q), Some((_, at))) => *at = q,
            _ => self.growing = None,
        }
        Ok(())
    }
    fn stop(&mut self) {
        self.player.stop();
        self.piece = None;
        self.growing = None;
        self.offset = 0.0;
    }
    fn set_paused(&mut self, paused: bool) {
        if paused != self.player.is_paused() {
            self.player.toggle_pause();
        }
    }
    fn is_paused(&self) -> bool {
        self.player.is_paused()
    }
    fn set_volume(&mut self, volume: f32) {
        self.player.set_volume(volume);
    }
    fn volume(&self) -> f32 {
        self.player.volume()
    }
    fn seek(&mut self, seconds: f64) {
        if self.piece.is_none() {
            return;
        }
        let seconds = seconds.clamp(0.0, self.length_seconds());
        let paused = self.player.is_paused();
        // The piece played (or its first part did), so what is left of it plays too.
        let _ = self.start_from(seconds);
        self.set_paused(paused);
    }
    fn position_seconds(&self) -> f64 {
        if self.piece.is_none() {
            return 0.0;
        }
        (self.offset + self.player.position_seconds()).min(self.length_seconds())
    }
    fn length_seconds(&self) -> f64 {
        if self.piece.is_none() {
            return 0.0;
        }
        self.offset + self.player.length_seconds()
    }
    fn is_playing(&self) -> bool {
        self.piece.is_some() && self.player.is_playing()
    }
    fn failure(&self) -> Option<String> {
        self.player
            .failed()
            .then(|| format!("the sound card {} stopped working", self.player.device()))
    }
    fn describe(&self) -> String {
        format!("sound card: {}", self.player.device())
    }
    fn set_voice(&mut self, voice: &Voice) -> Result<()> {
        self.player.set_voice(voice.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::notes::Note;
    use crate::sound::piano;
    use std::time::Duration;

    #[test]
    fn the_clock_runs_pauses_and_seeks() {
        let mut clock = Clock::default();
        assert!(!clock.is_running() && !clock.is_paused());
        clock.start(10.0);
        std::thread::sleep(Duration::from_millis(30));
        let p = clock.position();
        assert!((0.03..0.5).contains(&p), "{p}");
        clock.set_paused(true);
        let held = clock.position();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(clock.position(), held);
        clock.seek(9.99);
        assert!(clock.is_paused() && clock.position() == 9.99);
        clock.set_paused(false);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(clock.position(), 10.0);
        assert!(!clock.is_running());
        clock.seek(-3.0);
        assert!(clock.position() < 0.05 && clock.is_running());
        clock.stop();
        assert_eq!(clock.position(), 0.0);
    }

    #[test]
    fn silent_playback_keeps_time_like_the_synth() {
        let notes = [Note {
            onset: 0,
            pitch: 60,
            duration: 4,
        }];
        let piece = Piece::from_grid("t", &notes, 120.0);
        let mut silent = SilentPlayback::new("test");
        silent.play(&piece).unwrap();
        assert!(silent.is_playing());
        // A quarter at 120 bpm plus the release.
        assert!((silent.length_seconds() - (0.5 + piano::RELEASE_SECONDS)).abs() < 1e-9);
        assert!(silent.toggle_pause());
        assert!(silent.is_playing() && silent.is_paused());
        silent.set_volume(f32::NAN);
        assert_eq!(silent.volume(), 1.0);
        silent.set_volume(5.0);
        assert_eq!(silent.volume(), 2.0);
        silent.stop();
        assert!(!silent.is_playing());
        assert!(silent.describe().contains("no sound card (test)"));
    }
}
