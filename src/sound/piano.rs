//! The built-in piano voice: renders notes to f32 samples faster than real time.
//!
//! Each note is one voice: a handful of partials with slight inharmonicity (stiff strings) and a
//! detuned second string on the lowest partials, each partial decaying at its own rate (higher
//! partials faster, low notes longer), a fast attack, and a release at note-off. A low-pass
//! opening with velocity shapes the partial amplitudes (applied analytically, per partial, so it
//! costs nothing per sample). The partials run as incremental phasors (one complex multiply per
//! partial per sample, decay folded into the rotation). The voices are summed and panned by pitch;
//! [`crate::sound::renderer`] passes them through the master chain.
//!
//! One voice per key, as on a piano: a key struck again takes its voice over (the old sound fades
//! out in a few milliseconds). So at most 128 voices sound at once, however many notes a file
//! strikes together, and any piece renders in bounded time.

use crate::sound::format::BLOCK;
use crate::sound::timed::TimedNote;
use fundsp::prelude32::F32x;

/// Seconds a note keeps sounding after its note-off (the damper), fading to -80 dB.
pub const RELEASE_SECONDS: f64 = 0.25;
/// Attack time of every note, in seconds.
pub const ATTACK_SECONDS: f64 = 0.002;
/// Seconds a stolen voice takes to fade out (fast, but not a click).
const STEAL_SECONDS: f64 = 0.005;
/// Overall level of one voice at full velocity, before the limiter.
const MASTER_GAIN: f32 = 0.3;
/// Phasors per voice at most.
const MAX_PARTIALS: usize = 10;

/// Seconds the built-in voice's rendering of `notes` (playable ones) lasts: the last note-off
/// plus [`RELEASE_SECONDS`] (0 when there are no notes).
pub fn length_seconds(notes: &[TimedNote]) -> f64 {
    notes
        .iter()
        .map(|n| n.end() + RELEASE_SECONDS)
        .fold(0.0, f64::max)
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
    /// Its key was struck again: fading out, no longer counted as sounding.
    stolen: bool,
    pitch: u8,
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
            stolen: false,
            pitch: note.pitch,
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

    /// Gives the voice up from frame `at` on: it fades out over [`STEAL_SECONDS`], or, not yet
    /// sounding, never sounds.
    fn steal(&mut self, at: u64, sample_rate: f64) {
        self.stolen = true;
        if self.start >= at {
            self.end = 0;
            return;
        }
        let fade = (STEAL_SECONDS * sample_rate).ceil() as u64;
        self.release = self.release.min(at);
        self.release_mul = 10f64.powf(-4.0 / fade as f64) as f32;
        self.end = self.end.min(at + fade);
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
pub(crate) struct Piano {
    /// Playable notes ([`crate::sound::timed::playable`]), sorted by onset.
    notes: Vec<TimedNote>,
    next_note: usize,
    voices: Vec<Sounding>,
    scratch: Vec<F32x>,
    pub(crate) mix_left: Vec<F32x>,
    pub(crate) mix_right: Vec<F32x>,
    most_voices: usize,
}

impl Piano {
    /// A voice for `notes`, which must be playable (sorted, timed, durations bounded).
    pub(crate) fn new(notes: Vec<TimedNote>) -> Piano {
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

    /// More notes for a piece still being made (playable, sorted); they start no earlier than
    /// the notes not yet struck, so the order holds. One that should have sounded already
    /// sounds in the next block.
    pub(crate) fn append(&mut self, notes: &[TimedNote]) {
        self.notes.extend_from_slice(notes);
        self.notes[self.next_note..].sort_by(|a, b| a.start.total_cmp(&b.start));
    }

    /// The most voices that sounded at once so far (at most one a key, those fading out after a
    /// key was struck again aside).
    pub(crate) fn most_voices(&self) -> usize {
        self.most_voices
    }

    /// Mixes the block of frames `block_start..block_start + BLOCK` into `mix_left`/`mix_right`.
    pub(crate) fn render_block(&mut self, block_start: u64, sr: f64) {
        let block_end = block_start + BLOCK as u64;
        let first = self.next_note;
        while let Some(note) = self.notes.get(self.next_note) {
            if (note.start * sr).round() as u64 >= block_end {
                break;
            }
            self.next_note += 1;
        }
        // One string per key, as on a piano: of the notes struck on one key in this block only
        // the last sounds, and it takes over the key's voice still ringing.
        let mut struck = [false; 128];
        let mut new = Vec::new();
        for note in self.notes[first..self.next_note].iter().rev() {
            let key = &mut struck[note.pitch.min(127) as usize];
            if !*key {
                *key = true;
                new.push(*note);
            }
        }
        for voice in &mut self.voices {
            if !voice.stolen && struck[voice.pitch.min(127) as usize] {
                voice.steal(block_start, sr);
            }
        }
        for note in new.iter().rev() {
            self.voices.push(Sounding::new(note, sr));
        }
        self.voices.retain(|v| v.end > block_start);
        let held = self.voices.iter().filter(|v| !v.stolen).count();
        self.most_voices = self.most_voices.max(held);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn notes(count: usize, start: f64, first_pitch: u8) -> Vec<TimedNote> {
        (0..count)
            .map(|i| TimedNote {
                start,
                duration: 20.0,
                pitch: first_pitch + (i % 88) as u8,
                velocity: 90,
            })
            .collect()
    }

    fn play_until(piano: &mut Piano, seconds: f64) {
        let sr = 44_100.0;
        let mut start = 0;
        while start < (seconds * sr) as u64 {
            piano.render_block(start, sr);
            start += BLOCK as u64;
        }
    }

    #[test]
    fn a_key_struck_many_times_at_once_sounds_once() {
        let mut piano = Piano::new(notes(1000, 0.0, 21));
        play_until(&mut piano, 0.01);
        assert_eq!(piano.voices.len(), 88);
        // Struck again later: the new note takes over the key's voice.
        let mut again = notes(88, 0.0, 21);
        again.push(notes(1, 0.5, 21)[0]);
        let mut piano = Piano::new(again);
        play_until(&mut piano, 0.6);
        let held: Vec<_> = piano.voices.iter().filter(|v| !v.stolen).collect();
        assert_eq!(held.iter().filter(|v| v.pitch == 21).count(), 1);
        assert_eq!(piano.most_voices(), 88);
    }
}
