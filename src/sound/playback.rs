//! The calls every sound output answers, mirroring [`Player`]: the sound card here, a listener
//! over a socket ([`crate::sound::listen::Client`]), a MIDI port, or a silent clock.

use crate::sound::audio::Player;
use crate::sound::piece::Piece;
use crate::sound::timed::check_length;
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
    volume: f32,
    why: String,
}

impl SilentPlayback {
    /// `why`: the one line saying why there is no sound.
    pub fn new(why: &str) -> SilentPlayback {
        SilentPlayback {
            clock: Clock::default(),
            volume: 1.0,
            why: why.to_string(),
        }
    }
}

impl Playback for SilentPlayback {
    fn play(&mut self, piece: &Piece) -> Result<()> {
        self.clock.stop();
        check_length(&piece.timed_notes())?;
        self.clock.start(sounding_seconds(piece));
        Ok(())
    }
    fn stop(&mut self) {
        self.clock.stop();
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
        self.clock.is_running()
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
    piece: Option<Piece>,
    /// Where in the piece the player's rendering starts.
    offset: f64,
    length: f64,
}

impl CardPlayback {
    pub fn new(player: Player) -> CardPlayback {
        CardPlayback {
            player,
            piece: None,
            offset: 0.0,
            length: 0.0,
        }
    }

    /// The output device's name.
    pub fn device(&self) -> &str {
        self.player.device()
    }
}

impl Playback for CardPlayback {
    fn play(&mut self, piece: &Piece) -> Result<()> {
        self.stop();
        self.player.play(&piece.timed_notes())?;
        self.length = self.player.length_seconds();
        self.piece = Some(piece.clone());
        self.offset = 0.0;
        Ok(())
    }
    fn stop(&mut self) {
        self.player.stop();
        self.piece = None;
        self.offset = 0.0;
        self.length = 0.0;
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
        let Some(piece) = &self.piece else { return };
        let seconds = seconds.clamp(0.0, self.length);
        let paused = self.player.is_paused();
        // The whole piece played, so what is left of it plays too.
        let _ = self.player.play(&piece.timed_notes_from(seconds));
        self.offset = seconds;
        self.set_paused(paused);
    }
    fn position_seconds(&self) -> f64 {
        if self.piece.is_none() {
            return 0.0;
        }
        (self.offset + self.player.position_seconds()).min(self.length)
    }
    fn length_seconds(&self) -> f64 {
        self.length
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
