//! The piano voice: renders notes to f32 samples offline, faster than real time.
//!
//! Each note is one voice: a handful of partials with slight inharmonicity (stiff strings) and a
//! detuned second string on the lowest partials, each partial decaying at its own rate (higher
//! partials faster, low notes longer), a fast attack, and a release at note-off. A low-pass
//! opening with velocity shapes the partial amplitudes (applied analytically, per partial, so it
//! costs nothing per sample). The partials run as incremental phasors (one complex multiply per
//! partial per sample, decay folded into the rotation). The voices are summed, panned by pitch,
//! and pass through a fundsp master chain: a gentle low-pass, then a look-ahead limiter, so dense
//! chords never clip.
//!
//! [`Renderer`] renders block by block (for playback that starts before the whole piece is
//! rendered); [`render`] renders a whole piece; [`wav_bytes`] encodes it.

use crate::music::midi::{MidiPiece, DEFAULT_VELOCITY};
use crate::music::notes::{Note, STEPS_PER_QUARTER};
use crate::sound::soundfont::{Performer, SoundFont};
use anyhow::{bail, Result};
use fundsp::prelude32::{limiter_stereo, lowpass_hz, AudioUnit, BufferVec, F32x, MAX_BUFFER_SIZE};

/// Seconds a note keeps sounding after its note-off (the damper), fading to -80 dB.
pub const RELEASE_SECONDS: f64 = 0.25;
/// Attack time of every note, in seconds.
pub const ATTACK_SECONDS: f64 = 0.002;
/// Look-ahead (and attack) of the master limiter, in seconds.
const LIMITER_ATTACK: f32 = 0.004;
const LIMITER_RELEASE: f32 = 0.25;
/// Overall level of one voice at full velocity, before the limiter.
const MASTER_GAIN: f32 = 0.3;
/// Phasors per voice at most.
const MAX_PARTIALS: usize = 10;
/// Frames per internal block (fundsp's block size, and the SoundFont synth's).
const BLOCK: usize = MAX_BUFFER_SIZE;
const _: () = assert!(BLOCK == crate::sound::soundfont::BLOCK);

/// A note in seconds, for the synth.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimedNote {
    /// Onset in seconds.
    pub start: f64,
    /// Seconds from onset to note-off (the release follows).
    pub duration: f64,
    /// MIDI pitch (60 is middle C).
    pub pitch: u8,
    /// MIDI velocity 1..=127; 0 is silent.
    pub velocity: u8,
}

impl TimedNote {
    /// Note-off time in seconds.
    pub fn end(&self) -> f64 {
        self.start + self.duration
    }
}

/// Grid notes at `bpm` quarter notes per minute, all at [`DEFAULT_VELOCITY`].
pub fn from_grid(notes: &[Note], bpm: f64) -> Vec<TimedNote> {
    let step = 60.0 / bpm / STEPS_PER_QUARTER as f64;
    notes
        .iter()
        .map(|n| TimedNote {
            start: n.onset as f64 * step,
            duration: n.duration as f64 * step,
            pitch: n.pitch,
            velocity: DEFAULT_VELOCITY,
        })
        .collect()
}

/// A MIDI file's notes with their own velocities, held by its sustain pedal, timed by the file's
/// tempo map, or at a fixed `bpm_override` (quarters * 60 / bpm) when given.
pub fn from_midi(piece: &MidiPiece, bpm_override: Option<f64>) -> Vec<TimedNote> {
    let seconds = |q: f64| match bpm_override {
        Some(bpm) => q * 60.0 / bpm,
        None => piece.seconds_at(q),
    };
    piece
        .notes
        .iter()
        .map(|n| {
            let start = seconds(n.start);
            TimedNote {
                start,
                duration: (seconds(n.sustained_end) - start).max(0.0),
                pitch: n.pitch,
                velocity: n.velocity,
            }
        })
        .collect()
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
}

/// Seconds the rendering of `notes` lasts: the last note-off plus [`RELEASE_SECONDS`] (0 when
/// there are no notes).
pub fn length_seconds(notes: &[TimedNote]) -> f64 {
    notes
        .iter()
        .map(|n| n.end() + RELEASE_SECONDS)
        .fold(0.0, f64::max)
}

/// Frames (samples per channel) the rendering of `notes` lasts at `sample_rate`.
pub fn length_frames(notes: &[TimedNote], sample_rate: u32) -> u64 {
    (length_seconds(notes) * sample_rate as f64).ceil() as u64
}

/// One sounding note of the built-in voice.
#[derive(Clone, Debug)]
struct Sounding {
    /// Phasors of each partial at the eight frames of the next vector (aligned to multiples
    /// of eight frames); the real part is the output.
    re: [F32x; MAX_PARTIALS],
    im: [F32x; MAX_PARTIALS],
    /// Rotation of each partial over eight frames, decay included.
    cr: [F32x; MAX_PARTIALS],
    ci: [F32x; MAX_PARTIALS],
    partials: usize,
    /// Frame at which each partial has decayed below -80 dB (it is dropped then).
    dead_at: [u64; MAX_PARTIALS],
    /// First frame (absolute, renderer clock) the voice sounds.
    start: u64,
    /// Frame of note-off.
    release: u64,
    /// Frame after which the voice is silent (released, or decayed below -80 dB).
    end: u64,
    gain: f32,
    attack_step: f32,
    release_mul: f32,
    left: f32,
    right: f32,
}

impl Sounding {
    fn new(note: &TimedNote, sample_rate: f64) -> Sounding {
        let pitch = note.pitch.min(127) as f64;
        let f0 = 440.0 * 2f64.powf((pitch - 69.0) / 12.0);
        let v = note.velocity.min(127) as f64 / 127.0;
        // Stiffness: more inharmonic in the treble, as on a piano.
        let b = 0.0002 * 2f64.powf((pitch - 60.0) / 24.0);
        // Seconds to -60 dB of the fundamental: long in the bass, short in the treble.
        let t60 = 14.0 * 2f64.powf(-(pitch - 21.0) / 19.0);
        // Velocity opens a 2-pole low-pass, never below the second partial.
        let cutoff = (200.0 + 9_000.0 * v * v).max(2.2 * f0);
        let loudness = (0.06 + 0.94 * v * v) as f32;
        let nyquist = sample_rate / 2.0;

        let mut voice = Sounding {
            re: [F32x::ZERO; MAX_PARTIALS],
            im: [F32x::ZERO; MAX_PARTIALS],
            cr: [F32x::ZERO; MAX_PARTIALS],
            ci: [F32x::ZERO; MAX_PARTIALS],
            partials: 0,
            dead_at: [0; MAX_PARTIALS],
            start: 0,
            release: 0,
            end: 0,
            gain: 0.0,
            attack_step: 0.0,
            release_mul: 0.0,
            left: 0.0,
            right: 0.0,
        };
        // (partial number, detune in cents, weight): partials 1..=7, with a second string
        // detuned by a cent or two on partials 1..=3 (slow beating, like a piano's unisons).
        const LAYOUT: [(f64, f64, f64); MAX_PARTIALS] = [
            (1.0, -0.9, 0.5),
            (1.0, 0.9, 0.5),
            (2.0, -1.2, 0.3),
            (2.0, 1.2, 0.3),
            (3.0, 0.0, 0.45),
            (4.0, 0.0, 0.28),
            (5.0, 0.0, 0.16),
            (6.0, 0.0, 0.1),
            (7.0, 0.0, 0.06),
            (8.0, 0.0, 0.035),
        ];
        let start_frame = (note.start * sample_rate).round().max(0.0) as u64;
        let lead = (start_frame % 8) as usize;
        let mut longest = 0.0f64;
        let mut total = 0.0f64;
        let mut lifetimes = [0.0f64; MAX_PARTIALS];
        for &(k, cents, weight) in &LAYOUT {
            let f = k * f0 * (1.0 + b * k * k).sqrt() * 2f64.powf(cents / 1200.0);
            if f >= nyquist * 0.9 || f > 16_000.0 {
                continue;
            }
            let filter = 1.0 / (1.0 + (f / cutoff).powi(4)).sqrt();
            let amp = weight * filter;
            total += amp;
            // Too quiet to hear next to the fundamental: not worth a phasor.
            if amp < 0.004 {
                continue;
            }
            // Higher partials die away faster.
            let t60_k = t60 / (1.0 + 0.7 * (k - 1.0));
            let per_sample = 10f64.powf(-3.0 / (t60_k * sample_rate));
            let w = std::f64::consts::TAU * f / sample_rate;
            let i = voice.partials;
            let step8 = per_sample.powi(8);
            voice.cr[i] = F32x::splat((step8 * (8.0 * w).cos()) as f32);
            voice.ci[i] = F32x::splat((step8 * (8.0 * w).sin()) as f32);
            // amp * sin(w * (t - start)) * decay^(t - start): 0 at the start frame. Lanes before
            // it hold the continuation backwards (they are silenced by the envelope).
            let phasor = |j: usize| {
                let n = j as f64 - lead as f64;
                let (sin, cos) = (w * n).sin_cos();
                let mag = amp * per_sample.powf(n);
                // -i * mag * e^(i w n)
                ((mag * sin) as f32, (-mag * cos) as f32)
            };
            voice.re[i] = F32x::from(std::array::from_fn::<f32, 8, _>(|j| phasor(j).0));
            voice.im[i] = F32x::from(std::array::from_fn::<f32, 8, _>(|j| phasor(j).1));
            // Seconds until this partial is 80 dB below the voice's peak.
            lifetimes[i] = t60_k * (amp / 1e-4).log10() / 3.0;
            longest = longest.max(lifetimes[i]);
            voice.partials += 1;
        }
        let norm = F32x::splat(if total > 0.0 { 1.0 / total } else { 0.0 } as f32);
        for i in 0..voice.partials {
            voice.re[i] *= norm;
            voice.im[i] *= norm;
        }
        if note.velocity == 0 {
            voice.partials = 0;
        }
        // Pan by pitch: bass a little left, treble a little right (constant power).
        let pan = ((pitch - 64.0) / 44.0).clamp(-1.0, 1.0) * 0.5;
        let angle = (pan + 1.0) * std::f64::consts::FRAC_PI_4;
        let level = loudness * MASTER_GAIN * std::f32::consts::SQRT_2;
        voice.left = level * angle.cos() as f32;
        voice.right = level * angle.sin() as f32;

        let frame = |t: f64| (t * sample_rate).round().max(0.0) as u64;
        voice.start = frame(note.start);
        voice.release = frame(note.end()).max(voice.start);
        let released = frame(note.end() + RELEASE_SECONDS);
        let decayed = frame(note.start + longest.max(ATTACK_SECONDS));
        voice.end = released.min(decayed).max(voice.start);
        for (dead_at, lifetime) in voice.dead_at.iter_mut().zip(&lifetimes) {
            *dead_at = frame(note.start + lifetime);
        }
        voice.attack_step = (1.0 / (ATTACK_SECONDS * sample_rate)).min(1.0) as f32;
        voice.release_mul = 10f64.powf(-4.0 / (RELEASE_SECONDS * sample_rate)) as f32;
        voice
    }

    /// Adds frames `from..to` (absolute) of this voice into `left`/`right`, the block that
    /// starts at frame `block_start`, eight frames per SIMD vector; `scratch` holds a block.
    fn add_to(
        &mut self,
        block_start: u64,
        (from, to): (u64, u64),
        (left, right): (&mut [F32x], &mut [F32x]),
        scratch: &mut [F32x],
    ) {
        // Drop partials that have died away.
        let mut k = 0;
        while k < self.partials {
            if self.dead_at[k] <= from {
                let last = self.partials - 1;
                self.re.swap(k, last);
                self.im.swap(k, last);
                self.cr.swap(k, last);
                self.ci.swap(k, last);
                self.dead_at.swap(k, last);
                self.partials = last;
            } else {
                k += 1;
            }
        }
        // Vectors `first..end` of the block hold the frames.
        let first = ((from - block_start) / 8) as usize;
        let end = ((to - block_start) as usize).div_ceil(8);
        let acc = &mut scratch[first..end];
        acc.fill(F32x::ZERO);
        for k in 0..self.partials {
            let (cr, ci) = (self.cr[k], self.ci[k]);
            let (mut re, mut im) = (self.re[k], self.im[k]);
            for a in acc.iter_mut() {
                *a += re;
                let r = re * cr - im * ci;
                im = re * ci + im * cr;
                re = r;
            }
            (self.re[k], self.im[k]) = (re, im);
        }
        // Envelope and pan. Vectors wholly held at full level take the fast path.
        let (pan_l, pan_r) = (F32x::splat(self.left), F32x::splat(self.right));
        let mut gain = self.gain;
        for (i, v) in acc.iter().enumerate() {
            let chunk = first + i;
            let t0 = block_start + 8 * chunk as u64;
            let s = if gain >= 1.0 && t0 >= from && t0 + 8 <= to.min(self.release) {
                *v
            } else {
                let mut gains = [0.0f32; 8];
                for (j, g) in gains.iter_mut().enumerate() {
                    let t = t0 + j as u64;
                    if t < from || t >= to {
                        continue;
                    }
                    if t >= self.release {
                        gain *= self.release_mul;
                    } else if gain < 1.0 {
                        gain = (gain + self.attack_step).min(1.0);
                    }
                    *g = gain;
                }
                *v * F32x::from(gains)
            };
            left[chunk] += s * pan_l;
            right[chunk] += s * pan_r;
        }
        self.gain = gain;
    }
}

/// The built-in voice's notes, those sounding, and its mixing buffers.
struct Piano {
    notes: Vec<TimedNote>,
    next_note: usize,
    voices: Vec<Sounding>,
    scratch: Vec<F32x>,
    mix_left: Vec<F32x>,
    mix_right: Vec<F32x>,
    most_voices: usize,
}

impl Piano {
    fn new(notes: &[TimedNote]) -> Piano {
        let mut notes: Vec<TimedNote> = notes
            .iter()
            .copied()
            .filter(|n| n.start.is_finite() && n.duration.is_finite() && n.start >= 0.0)
            .collect();
        notes.sort_by(|a, b| a.start.total_cmp(&b.start));
        Piano {
            notes,
            next_note: 0,
            voices: Vec::with_capacity(128),
            scratch: vec![F32x::ZERO; BLOCK / 8],
            mix_left: vec![F32x::ZERO; BLOCK / 8],
            mix_right: vec![F32x::ZERO; BLOCK / 8],
            most_voices: 0,
        }
    }

    /// Mixes the block of frames `block_start..block_start + BLOCK` into `mix_left`/`mix_right`.
    fn render_block(&mut self, block_start: u64, sr: f64) {
        let block_end = block_start + BLOCK as u64;
        while let Some(note) = self.notes.get(self.next_note) {
            if (note.start * sr).round() as u64 >= block_end {
                break;
            }
            self.voices.push(Sounding::new(note, sr));
            self.next_note += 1;
        }
        self.most_voices = self.most_voices.max(self.voices.len());
        self.mix_left.fill(F32x::ZERO);
        self.mix_right.fill(F32x::ZERO);
        for voice in &mut self.voices {
            let from = voice.start.max(block_start);
            let to = voice.end.min(block_end);
            if from < to {
                voice.add_to(
                    block_start,
                    (from, to),
                    (&mut self.mix_left, &mut self.mix_right),
                    &mut self.scratch,
                );
            }
        }
        self.voices.retain(|v| v.end > block_end);
    }
}

/// Where a renderer's samples come from: the built-in voice, or a SoundFont.
enum Source {
    Builtin(Box<Piano>),
    SoundFont(Box<Performer>),
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
    input: BufferVec,
    output: BufferVec,
    /// Unread frames of `output`: `read..filled`.
    read: usize,
    filled: usize,
    /// Frames handed out so far.
    done: u64,
    total: u64,
}

impl Renderer {
    /// A renderer of `notes` (any order) in `format`, with the built-in voice.
    pub fn new(notes: &[TimedNote], format: Format) -> Renderer {
        let piano = Piano::new(notes);
        let total = length_frames(&piano.notes, format.sample_rate);
        let master = Box::new(
            (lowpass_hz(13_000.0, 0.6) | lowpass_hz(13_000.0, 0.6))
                >> limiter_stereo(LIMITER_ATTACK, LIMITER_RELEASE),
        );
        Renderer::with_source(Source::Builtin(Box::new(piano)), master, format, total)
    }

    /// A renderer of `notes` in `format` through a SoundFont (an error where its synth cannot
    /// render at this sample rate).
    pub fn with_soundfont(
        notes: &[TimedNote],
        format: Format,
        font: &SoundFont,
    ) -> Result<Renderer> {
        let performer = font.performer(notes, format)?;
        let total = performer.total_frames();
        let master = Box::new(limiter_stereo(LIMITER_ATTACK, LIMITER_RELEASE));
        Ok(Renderer::with_source(
            Source::SoundFont(Box::new(performer)),
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
            input: BufferVec::new(2),
            output: BufferVec::new(2),
            read: 0,
            filled: 0,
            done: 0,
            total,
        }
    }

    /// The output format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Frames the whole rendering lasts (music plus release).
    pub fn total_frames(&self) -> u64 {
        self.total
    }

    /// Frames handed out so far.
    pub fn frames_done(&self) -> u64 {
        self.done
    }

    /// The most voices that sounded at once so far (for a SoundFont: notes held at once).
    pub fn most_voices(&self) -> usize {
        match &self.source {
            Source::Builtin(piano) => piano.most_voices,
            Source::SoundFont(performer) => performer.most_held(),
        }
    }

    /// Why the rendering went silent before its end (the SoundFont synth failed), if it did.
    pub fn failure(&self) -> Option<&str> {
        match &self.source {
            Source::Builtin(_) => None,
            Source::SoundFont(performer) => performer.failure(),
        }
    }

    /// Renders the next 64 frames through the master chain.
    fn render_block(&mut self) {
        let block_start = self.clock;
        {
            let mut buffer = self.input.buffer_mut();
            match &mut self.source {
                Source::Builtin(piano) => {
                    piano.render_block(block_start, self.format.sample_rate as f64);
                    buffer.channel_mut(0).copy_from_slice(&piano.mix_left);
                    buffer.channel_mut(1).copy_from_slice(&piano.mix_right);
                }
                Source::SoundFont(performer) => {
                    let left = buffer.channel_f32_mut(0);
                    let right = buffer.channel_f32_mut(1);
                    performer.render_block(block_start, left, right);
                }
            }
        }
        self.master.process(
            BLOCK,
            &self.input.buffer_ref(),
            &mut self.output.buffer_mut(),
        );
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
    /// count). Returns the frames written: fewer than fit only at the end, 0 once done.
    pub fn fill(&mut self, out: &mut [f32]) -> usize {
        let channels = self.format.channels as usize;
        let want = (out.len() / channels).min((self.total - self.done) as usize);
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
}

/// Renders `notes` whole: interleaved samples, [`length_frames`] frames, within -1..=1.
pub fn render(notes: &[TimedNote], format: Format) -> Vec<f32> {
    Renderer::new(notes, format).render_all()
}

impl Renderer {
    /// Renders what remains, whole: interleaved samples.
    pub fn render_all(&mut self) -> Vec<f32> {
        let channels = self.format.channels as usize;
        let mut out = vec![0.0; (self.total - self.done) as usize * channels];
        let written = self.fill(&mut out);
        debug_assert_eq!(written * channels, out.len());
        out
    }
}

/// Sample encoding of a WAV file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WavEncoding {
    /// 16-bit PCM: what every player reads.
    #[default]
    Pcm16,
    /// 32-bit float.
    Float32,
}

/// Interleaved samples as the bytes of a WAV file.
pub fn wav_bytes(samples: &[f32], format: Format, encoding: WavEncoding) -> Result<Vec<u8>> {
    let spec = hound::WavSpec {
        channels: format.channels,
        sample_rate: format.sample_rate,
        bits_per_sample: match encoding {
            WavEncoding::Pcm16 => 16,
            WavEncoding::Float32 => 32,
        },
        sample_format: match encoding {
            WavEncoding::Pcm16 => hound::SampleFormat::Int,
            WavEncoding::Float32 => hound::SampleFormat::Float,
        },
    };
    let bytes_per_sample = spec.bits_per_sample as usize / 8;
    let mut cursor =
        std::io::Cursor::new(Vec::with_capacity(44 + samples.len() * bytes_per_sample));
    {
        let mut writer = hound::WavWriter::new(&mut cursor, spec)?;
        match encoding {
            WavEncoding::Pcm16 => {
                let mut w = writer.get_i16_writer(samples.len() as u32);
                for &s in samples {
                    w.write_sample((s.clamp(-1.0, 1.0) * 32767.0).round() as i16);
                }
                w.flush()?;
            }
            WavEncoding::Float32 => {
                for &s in samples {
                    writer.write_sample(s)?;
                }
            }
        }
        writer.finalize()?;
    }
    Ok(cursor.into_inner())
}

/// Renders `notes` and writes them to `path` as a WAV file (atomically).
pub fn render_wav_file(
    path: &std::path::Path,
    notes: &[TimedNote],
    format: Format,
    encoding: WavEncoding,
) -> Result<()> {
    let samples = render(notes, format);
    crate::fsutil::write_atomic(path, &wav_bytes(&samples, format, encoding)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(start: f64, duration: f64, pitch: u8, velocity: u8) -> TimedNote {
        TimedNote {
            start,
            duration,
            pitch,
            velocity,
        }
    }

    #[test]
    fn grid_and_midi_timing() {
        let grid = [Note {
            onset: 4,
            pitch: 60,
            duration: 2,
        }];
        let t = from_grid(&grid, 120.0);
        assert_eq!(t[0].start, 0.5);
        assert_eq!(t[0].duration, 0.25);
        assert_eq!(t[0].velocity, DEFAULT_VELOCITY);
    }

    #[test]
    fn blocks_of_any_size_give_the_same_samples() {
        let notes = [note(0.0, 0.3, 60, 100), note(0.1, 0.2, 67, 50)];
        let whole = render(&notes, Format::STEREO_44K);
        let mut r = Renderer::new(&notes, Format::STEREO_44K);
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
    fn mono_and_48k() {
        let notes = [note(0.0, 0.5, 48, 90)];
        let f = Format::new(48_000, 1).unwrap();
        let s = render(&notes, f);
        assert_eq!(s.len() as u64, length_frames(&notes, 48_000));
        assert!(s.iter().any(|&x| x.abs() > 0.01));
        assert!(Format::new(44_100, 3).is_err());
        let wav = wav_bytes(&s, f, WavEncoding::Pcm16).unwrap();
        let reader = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
        assert_eq!(reader.spec().bits_per_sample, 16);
        assert_eq!(reader.spec().sample_rate, 48_000);
        assert_eq!(reader.len() as usize, s.len());
    }
}
