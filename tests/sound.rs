//! The synth and the player: pitch, headroom, silence, length, and the fallback without a sound
//! card.

use nanotune::synth::{self, Format, TimedNote, WavEncoding, RELEASE_SECONDS};

fn note(start: f64, duration: f64, pitch: u8, velocity: u8) -> TimedNote {
    TimedNote {
        start,
        duration,
        pitch,
        velocity,
    }
}

/// Magnitude of the DFT of `x` at `freq` Hz (Hann window).
fn dft_magnitude(x: &[f32], sample_rate: f64, freq: f64) -> f64 {
    let n = x.len() as f64;
    let w = std::f64::consts::TAU * freq / sample_rate;
    let h = std::f64::consts::TAU / n;
    // Incremental phasors for the probe frequency and for the window.
    let (rot_re, rot_im) = (w.cos(), -w.sin());
    let (win_re, win_im) = (h.cos(), h.sin());
    let (mut p_re, mut p_im, mut c_re, mut c_im) = (1.0, 0.0, 1.0, 0.0);
    let (mut re, mut im) = (0.0, 0.0);
    for &s in x {
        let v = s as f64 * (0.5 - 0.5 * c_re);
        re += v * p_re;
        im += v * p_im;
        (p_re, p_im) = (p_re * rot_re - p_im * rot_im, p_re * rot_im + p_im * rot_re);
        (c_re, c_im) = (c_re * win_re - c_im * win_im, c_re * win_im + c_im * win_re);
    }
    (re * re + im * im).sqrt()
}

#[test]
fn middle_c_peaks_within_one_percent_of_261_6_hz() {
    let format = Format::new(44_100, 1).unwrap();
    let samples = synth::render(&[note(0.0, 1.5, 60, 100)], format);
    // One second from 0.1 s on: 1 Hz bins, scanned over 100..2000 Hz in 0.5 Hz steps.
    let window = &samples[4_410..4_410 + 44_100];
    let (mut best, mut best_freq) = (0.0, 0.0);
    let mut f = 100.0;
    while f < 2_000.0 {
        let m = dft_magnitude(window, 44_100.0, f);
        if m > best {
            (best, best_freq) = (m, f);
        }
        f += 0.5;
    }
    assert!(
        (best_freq - 261.63f64).abs() / 261.63 < 0.01,
        "spectral peak at {best_freq} Hz"
    );
}

#[test]
fn ten_note_chord_at_full_velocity_never_exceeds_one() {
    let chord: Vec<TimedNote> = [36u8, 40, 43, 48, 52, 55, 60, 64, 67, 72]
        .iter()
        .map(|&p| note(0.0, 2.0, p, 127))
        .collect();
    // And again struck twice more on top of the ringing one.
    let mut notes = chord.clone();
    for (i, n) in chord.iter().enumerate() {
        notes.push(note(0.5 + i as f64 * 0.001, 1.0, n.pitch + 12, 127));
        notes.push(note(1.0, 1.0, n.pitch, 127));
    }
    for format in [Format::STEREO_44K, Format::new(48_000, 1).unwrap()] {
        let samples = synth::render(&notes, format);
        let peak = samples.iter().fold(0.0f32, |m, &s| m.max(s.abs()));
        assert!(peak <= 1.0, "peak {peak}");
        assert!(peak > 0.5, "the chord should be loud, peak {peak}");
    }
}

#[test]
fn silence_renders_as_zeros() {
    let format = Format::STEREO_44K;
    assert!(synth::render(&[], format).is_empty());
    // Silent notes: the right length, all zeros.
    let silent = synth::render(&[note(0.0, 1.0, 60, 0)], format);
    assert_eq!(silent.len(), 2 * (1.25 * 44_100.0f64).ceil() as usize);
    assert!(silent.iter().all(|&s| s == 0.0));
    // Before the first note, and after the last note's release, exactly zero.
    let samples = synth::render(&[note(1.0, 0.5, 60, 100)], format);
    assert!(samples[..2 * 44_100].iter().all(|&s| s == 0.0));
    let first = samples.iter().position(|&s| s != 0.0).unwrap() / 2;
    assert!((44_100..44_200).contains(&first), "first sound at frame {first}");
}

#[test]
fn length_is_the_music_plus_release() {
    let notes = [note(0.0, 1.0, 60, 80), note(0.5, 2.0, 40, 80)];
    for (rate, channels) in [(44_100u32, 2u16), (48_000, 1)] {
        let samples = synth::render(&notes, Format::new(rate, channels).unwrap());
        let frames = ((2.5 + RELEASE_SECONDS) * rate as f64).ceil() as usize;
        assert_eq!(samples.len(), frames * channels as usize);
        // It is still sounding just before note-off, and faded by the end.
        let at = |t: f64| (t * rate as f64) as usize * channels as usize;
        let tail = &samples[at(2.5 + RELEASE_SECONDS - 0.01)..];
        assert!(tail.iter().all(|&s| s.abs() < 1e-3));
        assert!(samples[at(2.4)..at(2.45)].iter().any(|&s| s.abs() > 1e-3));
    }
}

#[test]
fn louder_notes_are_brighter() {
    // The low-pass opens with velocity: the share of energy above 1 kHz grows.
    let format = Format::new(44_100, 1).unwrap();
    let brightness = |velocity| {
        let s = synth::render(&[note(0.0, 1.0, 48, velocity)], format);
        let w = &s[2_000..2_000 + 8_192];
        let low = dft_magnitude(w, 44_100.0, 130.81);
        let high: f64 = (5..=7)
            .map(|k| dft_magnitude(w, 44_100.0, 130.81 * k as f64 * 1.0005))
            .sum();
        high / low
    };
    let (loud, soft) = (brightness(127), brightness(30));
    assert!(loud > 1.5 * soft, "loud {loud}, soft {soft}");
}

#[test]
fn wav_is_16_bit_pcm_by_default() {
    let format = Format::STEREO_44K;
    let samples = synth::render(&[note(0.0, 0.2, 69, 80)], format);
    let wav = synth::wav_bytes(&samples, format, WavEncoding::default()).unwrap();
    let reader = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.bits_per_sample, spec.sample_format, spec.channels),
        (16, hound::SampleFormat::Int, 2)
    );
    assert_eq!(reader.len() as usize, samples.len());
}
