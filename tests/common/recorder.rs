//! The screen's sound without a sound card: a playback that keeps what it is asked (each piece
//! as it would sound from where it starts, the volume, the stops) and reports the position a test
//! sets, as another output (a listener, a MIDI port) would.

use nanotune::sound::piece::Piece;
use nanotune::sound::playback::Playback;
use nanotune::sound::timed::TimedNote;
use std::sync::{Arc, Mutex, MutexGuard};

/// What the playback was asked.
#[derive(Default)]
pub struct Heard {
    /// Each play's notes from where it starts (a seek moves the start of the last one).
    pub played: Vec<Vec<TimedNote>>,
    pub volume: Option<f32>,
    pub stops: usize,
    /// Seconds into the piece; `None` while nothing plays.
    pub position: Option<f64>,
    piece: Option<Piece>,
}

/// A playback that records into a [`Heard`] the test keeps a handle on.
pub struct Recorder(Arc<Mutex<Heard>>);

impl Recorder {
    pub fn new() -> (Recorder, Arc<Mutex<Heard>>) {
        let heard = Arc::new(Mutex::new(Heard::default()));
        (Recorder(heard.clone()), heard)
    }

    fn heard(&self) -> MutexGuard<'_, Heard> {
        self.0.lock().unwrap()
    }
}

impl Playback for Recorder {
    fn play(&mut self, piece: &Piece) -> anyhow::Result<()> {
        let mut heard = self.heard();
        heard.played.push(piece.timed_notes());
        heard.piece = Some(piece.clone());
        heard.position = Some(0.0);
        Ok(())
    }
    fn stop(&mut self) {
        let mut heard = self.heard();
        heard.stops += 1;
        heard.position = None;
        heard.piece = None;
    }
    fn set_paused(&mut self, _: bool) {}
    fn is_paused(&self) -> bool {
        false
    }
    fn set_volume(&mut self, volume: f32) {
        self.heard().volume = Some(volume);
    }
    fn volume(&self) -> f32 {
        self.heard().volume.unwrap_or(1.0)
    }
    fn seek(&mut self, seconds: f64) {
        let mut heard = self.heard();
        let Some(from) = heard.piece.as_ref().map(|p| p.timed_notes_from(seconds)) else {
            return;
        };
        if let Some(last) = heard.played.last_mut() {
            *last = from;
        }
        heard.position = Some(seconds);
    }
    fn position_seconds(&self) -> f64 {
        self.heard().position.unwrap_or(0.0)
    }
    fn length_seconds(&self) -> f64 {
        self.heard()
            .piece
            .as_ref()
            .map_or(0.0, Piece::length_seconds)
    }
    fn is_playing(&self) -> bool {
        self.heard().position.is_some()
    }
    fn failure(&self) -> Option<String> {
        None
    }
    fn describe(&self) -> String {
        "a test's recorder".into()
    }
}
