//! Where the server side's sound goes: a listener (over SSH), the sound card, or nowhere (then
//! the caller saves a WAV). The screen and `nanotune play` hold one [`Output`].
//!
//! ```no_run
//! use nanotune::sound::output::Output;
//! # fn main() -> anyhow::Result<()> {
//! # let piece = nanotune::sound::piece::Piece::from_grid("a piece", &[], 120.0);
//! let (mut output, note) = Output::open(None); // --listener, $NANOTUNE_LISTENER, default path
//! if let Some(note) = note {
//!     eprintln!("{note}"); // a named listener did not answer
//! }
//! println!("{}", output.describe()); // "sound: listener via SSH (...)", "sound: sound card ..."
//! if !output.play(&piece)? {
//!     // no audio: save a WAV instead
//! }
//! if let Some(change) = output.check() {
//!     println!("{change}"); // the listener went away: now on the sound card, or silent
//! }
//! # Ok(())
//! # }
//! ```

use crate::sound::audio::Player;
use crate::sound::listen::{locate_listener, Client, LISTENER_ENV};
use crate::sound::piece::Piece;
use crate::sound::playback::{CardPlayback, Playback};

/// One place sound can go.
pub enum Output {
    Listener(Client),
    Card(CardPlayback),
    /// No audio; why, in one line.
    Silent(String),
}

impl Output {
    /// The listener found by [`locate_listener`] (`flag` = `--listener`, then
    /// `$NANOTUNE_LISTENER`, then the default socket path), else the sound card, else silence.
    /// The note says why a listener that was named is not used.
    pub fn open(flag: Option<&str>) -> (Output, Option<String>) {
        match locate_listener(flag, std::env::var(LISTENER_ENV).ok()) {
            Ok(Some(client)) => (Output::Listener(client), None),
            Ok(None) => (Output::sound_card(), None),
            Err(e) => {
                let fallback = Output::sound_card();
                let note = format!("{e:#}; {}", fallback.describe());
                (fallback, Some(note))
            }
        }
    }

    /// The sound card, or silence where there is none. Prints nothing.
    pub fn sound_card() -> Output {
        match Player::new() {
            Ok(player) => Output::Card(CardPlayback::new(player)),
            Err(no_audio) => Output::Silent(no_audio.0),
        }
    }

    /// The status line's words.
    pub fn describe(&self) -> String {
        match self {
            Output::Listener(client) => format!("sound: listener via SSH ({})", client.address()),
            Output::Card(card) => format!("sound: {}", card.describe()),
            Output::Silent(_) => "no audio: space saves a WAV".into(),
        }
    }

    pub fn is_listener(&self) -> bool {
        matches!(self, Output::Listener(_))
    }

    /// The playback, unless there is no audio.
    pub fn playback(&mut self) -> Option<&mut dyn Playback> {
        match self {
            Output::Listener(client) => Some(client),
            Output::Card(card) => Some(card),
            Output::Silent(_) => None,
        }
    }

    fn playback_ref(&self) -> Option<&dyn Playback> {
        match self {
            Output::Listener(client) => Some(client),
            Output::Card(card) => Some(card),
            Output::Silent(_) => None,
        }
    }

    /// Plays `piece`; false where there is no audio (save a WAV instead); an error where the
    /// piece cannot play (too long, or turned down by the listener).
    pub fn play(&mut self, piece: &Piece) -> anyhow::Result<bool> {
        match self.playback() {
            Some(p) => p.play(piece).map(|()| true),
            None => Ok(false),
        }
    }

    pub fn stop(&mut self) {
        if let Some(p) = self.playback() {
            p.stop();
        }
    }

    /// Returns whether it is now paused.
    pub fn toggle_pause(&mut self) -> bool {
        self.playback().is_some_and(|p| p.toggle_pause())
    }

    pub fn set_volume(&mut self, volume: f32) {
        if let Some(p) = self.playback() {
            p.set_volume(volume);
        }
    }

    pub fn seek(&mut self, seconds: f64) {
        if let Some(p) = self.playback() {
            p.seek(seconds);
        }
    }

    /// Seconds into the piece: the listener's clock, or the sound card's.
    pub fn position_seconds(&self) -> f64 {
        self.playback_ref().map_or(0.0, |p| p.position_seconds())
    }

    pub fn length_seconds(&self) -> f64 {
        self.playback_ref().map_or(0.0, |p| p.length_seconds())
    }

    pub fn is_playing(&self) -> bool {
        self.playback_ref().is_some_and(|p| p.is_playing())
    }

    pub fn is_paused(&self) -> bool {
        self.playback_ref().is_some_and(|p| p.is_paused())
    }

    /// Call now and then (each frame): when the listener has gone away, falls back to the sound
    /// card (or silence) and says so, once. A sound card that failed is reported the same way.
    pub fn check(&mut self) -> Option<String> {
        let failure = self.playback_ref().and_then(|p| p.failure())?;
        let was = self.describe();
        let volume = self.playback_ref().map_or(1.0, |p| p.volume());
        *self = match self {
            Output::Listener(_) => Output::sound_card(),
            _ => Output::Silent(failure.clone()),
        };
        self.set_volume(volume);
        Some(format!("{failure} ({was}); now {}", self.describe()))
    }
}
