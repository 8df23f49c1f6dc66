//! Where the server side's sound goes: a listener (over SSH), the sound card, another playback
//! (a test's, a MIDI port), or nowhere (then the caller saves a WAV). The screen and `nanotune
//! play` hold one [`Output`]; everything that plays goes through its one [`Playback`].
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
//! match output.playback() {
//!     Some(playback) => playback.play(&piece)?,
//!     None => { /* no audio: save a WAV instead */ }
//! }
//! if let Some(change) = output.check() {
//!     println!("{change}"); // the listener went away: now on the sound card, or silent
//! }
//! # Ok(())
//! # }
//! ```

use crate::sound::audio::Player;
use crate::sound::listen::{locate_listener, Client, LISTENER_ENV};
use crate::sound::playback::{CardPlayback, Playback};

/// One place sound can go.
pub enum Output {
    Listener(Client),
    Card(CardPlayback),
    /// Any other playback: a MIDI port, a test's recorder.
    Other(Box<dyn Playback>),
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
            Output::Other(other) => format!("sound: {}", other.describe()),
            Output::Silent(_) => "no audio: playing saves a WAV".into(),
        }
    }

    /// The listener, where sound goes to one.
    pub fn listener(&mut self) -> Option<&mut Client> {
        match self {
            Output::Listener(client) => Some(client),
            _ => None,
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
            Output::Other(other) => Some(other.as_mut()),
            Output::Silent(_) => None,
        }
    }

    pub fn playback_ref(&self) -> Option<&dyn Playback> {
        match self {
            Output::Listener(client) => Some(client),
            Output::Card(card) => Some(card),
            Output::Other(other) => Some(other.as_ref()),
            Output::Silent(_) => None,
        }
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
        if let Some(p) = self.playback() {
            p.set_volume(volume);
        }
        Some(format!("{failure} ({was}); now {}", self.describe()))
    }
}
