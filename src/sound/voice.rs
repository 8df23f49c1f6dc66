//! The voice that plays: the built-in synth (light, always there, the default) or a SoundFont.
//!
//! Everything that makes sound takes a [`Voice`]: [`crate::sound::audio::Player`] (playback on
//! the sound card), WAV files ([`Voice::render_wav_file`]) and whatever renders block by block
//! ([`Voice::renderer`]). A SoundFont is loaded once; cloning a voice shares it, so switching
//! voices between plays costs nothing.

use crate::sound::format::Format;
use crate::sound::piano;
use crate::sound::renderer::Renderer;
use crate::sound::soundfont::SoundFont;
use crate::sound::timed::{playable, TimedNote};
use crate::sound::wav::{self, WavEncoding};
use anyhow::{bail, Result};
use std::path::Path;

#[derive(Clone, Debug, Default)]
pub enum Voice {
    /// The built-in piano (`piano.rs`).
    #[default]
    Builtin,
    /// A General MIDI SoundFont, program 0.
    SoundFont(SoundFont),
}

impl Voice {
    /// Its name for people: "built-in", or the SoundFont's file name.
    pub fn name(&self) -> String {
        match self {
            Voice::Builtin => "built-in".into(),
            Voice::SoundFont(font) => font.file_name().to_string(),
        }
    }

    /// Seconds the rendering of `notes` lasts: the last note-off plus the voice's release.
    pub fn length_seconds(&self, notes: &[TimedNote]) -> f64 {
        match self {
            Voice::Builtin => piano::length_seconds(&playable(notes)),
            Voice::SoundFont(font) => font.length_seconds(notes),
        }
    }

    /// Whether this voice can render in `format` (a SoundFont needs 16 kHz or more).
    pub fn check_format(&self, format: Format) -> Result<()> {
        match self {
            Voice::Builtin => Ok(()),
            Voice::SoundFont(font) => font.check_format(format),
        }
    }

    /// A renderer of `notes` in `format`, block by block (see [`Renderer::fill`]); an error for a
    /// piece too long to play ([`crate::sound::timed::check_length`]).
    pub fn renderer(&self, notes: &[TimedNote], format: Format) -> Result<Renderer> {
        match self {
            Voice::Builtin => Renderer::new(notes, format),
            Voice::SoundFont(font) => Renderer::with_soundfont(notes, format, font),
        }
    }

    /// Renders `notes` whole into memory: interleaved samples within -1..=1. For short pieces;
    /// [`Voice::render_wav_file`] streams.
    pub fn render(&self, notes: &[TimedNote], format: Format) -> Result<Vec<f32>> {
        let mut renderer = self.renderer(notes, format)?;
        let samples = renderer.render_all();
        if let Some(why) = renderer.failure() {
            bail!(
                "{}: the SoundFont synth failed while rendering: {why}",
                self.name()
            );
        }
        Ok(samples)
    }

    /// Renders `notes` into a WAV file at `path`, block by block, atomically.
    pub fn render_wav_file(
        &self,
        path: &Path,
        notes: &[TimedNote],
        format: Format,
        encoding: WavEncoding,
    ) -> Result<()> {
        let mut renderer = self.renderer(notes, format)?;
        wav::write_file(path, &mut renderer, encoding)
    }
}
