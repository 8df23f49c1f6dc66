//! Renders notes block by block through a voice (the built-in piano or a SoundFont) and the
//! master chain (a look-ahead limiter, so dense chords never clip). Playback, WAV files and the
//! listener all read a [`Renderer`]: nothing holds a buffer the length of a piece.
//!
//! Silence costs almost nothing: once the voice has been silent for [`QUIET_SECONDS`], the master
//! chain is skipped (its output is below -120 dB by then) until sound comes again, so a piece with
//! long gaps renders in the time of its music.

use crate::sound::format::{peak, Format, BLOCK, QUIET_SECONDS, SILENT};
use crate::sound::piano::{self, Piano};
use crate::sound::soundfont::{Performer, SoundFont};
use crate::sound::timed::{check_length, playable, TimedNote};
use anyhow::Result;
use fundsp::prelude32::{limiter_stereo, lowpass_hz, AudioUnit, BufferVec};

/// Look-ahead (and attack) of the master limiter, in seconds.
const LIMITER_ATTACK: f32 = 0.004;
const LIMITER_RELEASE: f32 = 0.25;

/// Where a renderer's samples come from: the built-in voice, or a SoundFont.
enum Source {
    Builtin(Box<Piano>),
    SoundFont(Box<Performer>, SoundFont),
}

/// Renders notes block by block. Create it with [`Renderer::new`] (the built-in voice) or
/// [`crate::sound::voice::Voice::renderer`], then call [`Renderer::fill`] until it returns 0;
/// the output is exactly [`Renderer::total_frames`] frames.
pub struct Renderer {
    source: Source,
    format: Format,
    /// The master chain: stereo in, stereo out (a look-ahead limiter; the built-in voice
    /// passes a gentle low-pass first).
    master: Box<dyn AudioUnit>,
    /// Frames of limiter look-ahead: the internal clock runs this far ahead of the output.
    latency: u64,
    /// Internal clock: frames rendered into the master chain so far.
    clock: u64,
    /// Frames of silence the voice has given in a row, and how many make the output silent.
    quiet: u64,
    quiet_limit: u64,
    input: BufferVec,
    output: BufferVec,
    /// Unread frames of `output`: `read..filled`.
    read: usize,
    filled: usize,
    /// Frames handed out so far.
    done: u64,
    total: u64,
    /// For a piece still being made: the frame before which it is whole (no note still to come
    /// starts earlier), where rendering waits for more ([`Renderer::append`]).
    settled: Option<u64>,
}

impl Renderer {
    /// A renderer of `notes` (any order) in `format`, with the built-in voice; an error, in one
    /// line, for a piece longer than [`crate::sound::timed::LONGEST_PIECE_SECONDS`].
    pub fn new(notes: &[TimedNote], format: Format) -> Result<Renderer> {
        check_length(notes)?;
        let notes = playable(notes);
        let total = (piano::length_seconds(&notes) * format.sample_rate as f64).ceil() as u64;
        let master = Box::new(
            (lowpass_hz(13_000.0, 0.6) | lowpass_hz(13_000.0, 0.6))
                >> limiter_stereo(LIMITER_ATTACK, LIMITER_RELEASE),
        );
        let piano = Piano::new(notes);
        Ok(Renderer::with_source(
            Source::Builtin(Box::new(piano)),
            master,
            format,
            total,
        ))
    }

    /// A renderer of `notes` in `format` through a SoundFont (an error where the piece is too
    /// long or its synth cannot render at this sample rate).
    pub fn with_soundfont(
        notes: &[TimedNote],
        format: Format,
        font: &SoundFont,
    ) -> Result<Renderer> {
        check_length(notes)?;
        let performer = font.performer(&playable(notes), format)?;
        let total = performer.total_frames();
        let master = Box::new(limiter_stereo(LIMITER_ATTACK, LIMITER_RELEASE));
        Ok(Renderer::with_source(
            Source::SoundFont(Box::new(performer), font.clone()),
            master,
            format,
            total,
        ))
    }

    fn with_source(
        source: Source,
        mut master: Box<dyn AudioUnit>,
        format: Format,
        total: u64,
    ) -> Renderer {
        let sr = format.sample_rate as f64;
        master.set_sample_rate(sr);
        master.allocate();
        Renderer {
            source,
            format,
            master,
            latency: (sr * LIMITER_ATTACK as f64).round().max(1.0) as u64,
            clock: 0,
            quiet: 0,
            quiet_limit: (QUIET_SECONDS * sr) as u64,
            input: BufferVec::new(2),
            output: BufferVec::new(2),
            read: 0,
            filled: 0,
            done: 0,
            total,
            settled: None,
        }
    }

    /// Makes this the start of a piece still being made, whole before `settled` seconds: the
    /// rendering stops there until [`Renderer::append`] brings more.
    pub fn hold_at(mut self, settled: f64) -> Renderer {
        let settled = self.frame(settled);
        self.settled = Some(settled);
        self.total = self.total.max(settled);
        self
    }

    /// More notes of a piece being made (none starting before the last settled point), and where
    /// it is now whole (`None`: all of it is here). An error, and no change, where the piece
    /// would grow longer than a piece may last.
    pub fn append(&mut self, notes: &[TimedNote], settled: Option<f64>) -> Result<()> {
        check_length(notes)?;
        let notes = playable(notes);
        let sr = self.format.sample_rate as f64;
        let end = match &mut self.source {
            Source::Builtin(piano) => {
                piano.append(&notes);
                piano::length_seconds(&notes) * sr
            }
            Source::SoundFont(performer, font) => {
                performer.append(&notes, font);
                performer.total_frames() as f64
            }
        };
        self.total = self.total.max(end.ceil() as u64);
        self.settled = settled.map(|s| self.frame(s));
        if let Some(settled) = self.settled {
            // A rest at the end of what is made so far is part of the piece.
            self.total = self.total.max(settled);
        }
        Ok(())
    }

    /// Whether all of the piece is here (not still being made).
    pub fn is_whole(&self) -> bool {
        self.settled.is_none()
    }

    fn frame(&self, seconds: f64) -> u64 {
        (seconds.max(0.0) * self.format.sample_rate as f64).round() as u64
    }

    /// The output format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Frames the whole rendering lasts (music plus release).
    pub fn total_frames(&self) -> u64 {
        self.total
    }

    /// The most voices that sounded at once so far (for a SoundFont: notes held at once).
    pub fn most_voices(&self) -> usize {
        match &self.source {
            Source::Builtin(piano) => piano.most_voices(),
            Source::SoundFont(performer, _) => performer.most_held(),
        }
    }

    /// Why the rendering went silent before its end (the SoundFont synth failed), if it did.
    pub fn failure(&self) -> Option<&str> {
        match &self.source {
            Source::Builtin(_) => None,
            Source::SoundFont(performer, _) => performer.failure(),
        }
    }

    /// Renders the next block through the master chain, or silence where all is quiet.
    fn render_block(&mut self) {
        let block_start = self.clock;
        let sr = self.format.sample_rate as f64;
        let peak = {
            let mut buffer = self.input.buffer_mut();
            match &mut self.source {
                Source::Builtin(piano) => {
                    piano.render_block(block_start, sr);
                    buffer.channel_mut(0).copy_from_slice(&piano.mix_left);
                    buffer.channel_mut(1).copy_from_slice(&piano.mix_right);
                }
                Source::SoundFont(performer, _) => {
                    let left = buffer.channel_f32_mut(0);
                    let right = buffer.channel_f32_mut(1);
                    performer.render_block(block_start, left, right);
                }
            }
            peak(buffer.channel_f32(0)).max(peak(buffer.channel_f32(1)))
        };
        self.quiet = if peak <= SILENT {
            self.quiet + BLOCK as u64
        } else {
            0
        };
        if self.quiet > self.quiet_limit {
            let mut out = self.output.buffer_mut();
            out.channel_f32_mut(0).fill(0.0);
            out.channel_f32_mut(1).fill(0.0);
        } else {
            self.master.process(
                BLOCK,
                &self.input.buffer_ref(),
                &mut self.output.buffer_mut(),
            );
        }
        self.clock = block_start + BLOCK as u64;
        // The output lags the clock by the limiter's look-ahead: drop it at the very start.
        self.read = if block_start < self.latency {
            (self.latency - block_start).min(BLOCK as u64) as usize
        } else {
            0
        };
        self.filled = BLOCK;
    }

    /// Writes the next frames, interleaved, into `out` (its length a multiple of the channel
    /// count). Returns the frames written: fewer than fit only at the end, 0 once done; for a
    /// piece still being made, fewer (or 0) also where it is not yet whole.
    pub fn fill(&mut self, out: &mut [f32]) -> usize {
        let channels = self.format.channels as usize;
        // While the piece is being made, no block is rendered that reaches past its settled
        // point: a note still to come sounds from its own frame, not from the next block.
        let until = match self.settled {
            None => self.total,
            Some(s) => (s / BLOCK as u64 * BLOCK as u64)
                .saturating_sub(self.latency)
                .min(self.total),
        };
        let want = (out.len() / channels).min(until.saturating_sub(self.done) as usize);
        let mut written = 0;
        while written < want {
            if self.read == self.filled {
                self.render_block();
                continue;
            }
            let n = (self.filled - self.read).min(want - written);
            let buffer = self.output.buffer_ref();
            let left = &buffer.channel_f32(0)[self.read..self.read + n];
            let right = &buffer.channel_f32(1)[self.read..self.read + n];
            let dst = &mut out[written * channels..(written + n) * channels];
            if channels == 2 {
                for ((frame, &l), &r) in dst.chunks_exact_mut(2).zip(left).zip(right) {
                    frame[0] = l.clamp(-1.0, 1.0);
                    frame[1] = r.clamp(-1.0, 1.0);
                }
            } else {
                for ((sample, &l), &r) in dst.iter_mut().zip(left).zip(right) {
                    *sample = (0.5 * (l + r)).clamp(-1.0, 1.0);
                }
            }
            self.read += n;
            written += n;
        }
        self.done += written as u64;
        written
    }

    /// Renders what remains into memory: interleaved samples. For short pieces (tests, benches):
    /// files and playback stream with [`Renderer::fill`].
    pub fn render_all(&mut self) -> Vec<f32> {
        let channels = self.format.channels as usize;
        let mut out = vec![0.0; (self.total - self.done) as usize * channels];
        let written = self.fill(&mut out);
        debug_assert_eq!(written * channels, out.len());
        out
    }
}

/// Renders `notes` whole with the built-in voice: interleaved samples within -1..=1 (see
/// [`Renderer::render_all`]).
pub fn render(notes: &[TimedNote], format: Format) -> Result<Vec<f32>> {
    Ok(Renderer::new(notes, format)?.render_all())
}

/// Frames (samples per channel) the built-in voice's rendering of `notes` lasts at
/// `sample_rate`.
pub fn length_frames(notes: &[TimedNote], sample_rate: u32) -> u64 {
    (piano::length_seconds(&playable(notes)) * sample_rate as f64).ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(start: f64, duration: f64, pitch: u8, velocity: u8) -> TimedNote {
        TimedNote::new(start, duration, pitch, velocity)
    }

    #[test]
    fn blocks_of_any_size_give_the_same_samples() {
        let notes = [note(0.0, 0.3, 60, 100), note(0.1, 0.2, 67, 50)];
        let whole = render(&notes, Format::STEREO_44K).unwrap();
        let mut r = Renderer::new(&notes, Format::STEREO_44K).unwrap();
        let mut pieces = Vec::new();
        let mut buf = vec![0.0; 2 * 37];
        loop {
            let n = r.fill(&mut buf);
            if n == 0 {
                break;
            }
            pieces.extend_from_slice(&buf[..2 * n]);
        }
        assert_eq!(whole, pieces);
    }

    #[test]
    fn a_piece_rendered_as_it_is_made_sounds_as_the_whole() {
        // Chords and notes ringing across the points where the piece was whole so far.
        let notes: Vec<TimedNote> = (0..40)
            .map(|i| note(i as f64 * 0.11, 0.35, 48 + (i * 7 % 30) as u8, 60 + i as u8))
            .collect();
        let format = Format::STEREO_44K;
        let whole = render(&notes, format).unwrap();
        // Made in parts: each part's notes start at or after the previous settled point.
        let settled_at = [0.5, 0.51, 1.7, 3.3];
        let part = |from: f64, to: f64| -> Vec<TimedNote> {
            notes
                .iter()
                .filter(|n| n.start >= from && n.start < to)
                .copied()
                .collect()
        };
        let mut r = Renderer::new(&part(0.0, settled_at[0]), format)
            .unwrap()
            .hold_at(settled_at[0]);
        let mut got = Vec::new();
        let mut buf = vec![0.0; 2 * 300];
        let mut drain = |r: &mut Renderer, got: &mut Vec<f32>| loop {
            let n = r.fill(&mut buf);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..2 * n]);
        };
        drain(&mut r, &mut got);
        // It waits short of the settled point: no frame of what is still to come is guessed.
        let held = got.len() / 2;
        assert!(held > 0 && (held as f64) < 0.5 * 44_100.0, "{held}");
        for pair in settled_at.windows(2) {
            r.append(&part(pair[0], pair[1]), Some(pair[1])).unwrap();
            drain(&mut r, &mut got);
            assert!(!r.is_whole());
        }
        r.append(&part(settled_at[3], f64::INFINITY), None).unwrap();
        assert!(r.is_whole());
        drain(&mut r, &mut got);
        assert_eq!(got.len(), whole.len());
        assert_eq!(got, whole, "the same samples, bit for bit");
    }

    #[test]
    fn mono_and_48k() {
        let notes = [note(0.0, 0.5, 48, 90)];
        let f = Format::new(48_000, 1).unwrap();
        let s = render(&notes, f).unwrap();
        assert_eq!(s.len() as u64, length_frames(&notes, 48_000));
        assert!(s.iter().any(|&x| x.abs() > 0.01));
        assert!(Format::new(44_100, 3).is_err());
    }

    #[test]
    fn a_long_gap_is_silence_and_the_music_after_it_sounds_as_alone() {
        let f = Format::STEREO_44K;
        let alone = render(&[note(0.0, 0.4, 60, 90)], f).unwrap();
        let gap = 20.0;
        let both = render(&[note(0.0, 0.4, 60, 90), note(gap, 0.4, 60, 90)], f).unwrap();
        let at = (gap * 44_100.0) as usize * 2;
        assert!(both[alone.len()..at].iter().all(|&s| s.abs() < 1e-5));
        // After a quiet stretch the master chain picks up where its state was (silence).
        let after = &both[at..at + alone.len()];
        let diff = after
            .iter()
            .zip(&alone)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(diff < 1e-3, "{diff}");
    }
}
