//! The sample format a rendering is made in (rate and channels), and what every voice agrees on:
//! the block it renders at a time, and what counts as silence.

use anyhow::{bail, Result};

/// Frames every voice renders at a time (fundsp's block size; the SoundFont synth is set to it).
pub const BLOCK: usize = fundsp::prelude32::MAX_BUFFER_SIZE;
/// A block whose peak is at most this is silence (-120 dB).
pub const SILENT: f32 = 1e-6;
/// Seconds of silence after which a voice or the master chain may rest until the next note
/// (twice the limiter's release: its output is silence by then too).
pub const QUIET_SECONDS: f64 = 0.5;

/// The largest magnitude in `samples`.
pub fn peak(samples: &[f32]) -> f32 {
    samples.iter().fold(0.0f32, |m, s| m.max(s.abs()))
}

/// Output sample rate and channel count (samples are interleaved).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    pub sample_rate: u32,
    /// 1 (mono) or 2 (stereo).
    pub channels: u16,
}

impl Format {
    /// CD quality stereo, 44.1 kHz.
    pub const STEREO_44K: Format = Format {
        sample_rate: 44_100,
        channels: 2,
    };

    /// Checks the format: 8..=192 kHz (44.1 and 48 kHz are what players expect), mono or stereo.
    pub fn new(sample_rate: u32, channels: u16) -> Result<Format> {
        if !(8_000..=192_000).contains(&sample_rate) {
            bail!("sample rate {sample_rate} Hz is outside 8000..192000");
        }
        if !(1..=2).contains(&channels) {
            bail!("{channels} channels: only mono (1) or stereo (2)");
        }
        Ok(Format {
            sample_rate,
            channels,
        })
    }

    /// The frame at `seconds`, rounded (0 before the start).
    pub fn frame_at(&self, seconds: f64) -> u64 {
        (seconds * self.sample_rate as f64).round().max(0.0) as u64
    }
}
