//! The synth and the player: pitch, headroom, silence, length, and the fallback without a sound
//! card.

mod common;

use common::dft_magnitude;
use nanotune::sound::format::Format;
use nanotune::sound::piano::RELEASE_SECONDS;
use nanotune::sound::renderer::{length_frames, render};
use nanotune::sound::timed::{self, TimedNote};
use nanotune::sound::wav::{wav_bytes, WavEncoding};

fn note(start: f64, duration: f64, pitch: u8, velocity: u8) -> TimedNote {
    TimedNote::new(start, duration, pitch, velocity)
}

#[test]
fn middle_c_peaks_within_one_percent_of_261_6_hz() {
    let format = Format::new(44_100, 1).unwrap();
    let samples = render(&[note(0.0, 1.5, 60, 100)], format).unwrap();
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
        let samples = render(&notes, format).unwrap();
        let peak = samples.iter().fold(0.0f32, |m, &s| m.max(s.abs()));
        assert!(peak <= 1.0, "peak {peak}");
        assert!(peak > 0.5, "the chord should be loud, peak {peak}");
    }
}

#[test]
fn silence_renders_as_zeros() {
    let format = Format::STEREO_44K;
    assert!(render(&[], format).unwrap().is_empty());
    // Silent notes: the right length, all zeros.
    let silent = render(&[note(0.0, 1.0, 60, 0)], format).unwrap();
    assert_eq!(silent.len(), 2 * (1.25 * 44_100.0f64).ceil() as usize);
    assert!(silent.iter().all(|&s| s == 0.0));
    // Before the first note, and after the last note's release, exactly zero.
    let samples = render(&[note(1.0, 0.5, 60, 100)], format).unwrap();
    assert!(samples[..2 * 44_100].iter().all(|&s| s == 0.0));
    let first = samples.iter().position(|&s| s != 0.0).unwrap() / 2;
    assert!(
        (44_100..44_200).contains(&first),
        "first sound at frame {first}"
    );
}

#[test]
fn length_is_the_music_plus_release() {
    let notes = [note(0.0, 1.0, 60, 80), note(0.5, 2.0, 40, 80)];
    for (rate, channels) in [(44_100u32, 2u16), (48_000, 1)] {
        let samples = render(&notes, Format::new(rate, channels).unwrap()).unwrap();
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
        let s = render(&[note(0.0, 1.0, 48, velocity)], format).unwrap();
        let w = &s[2_000..2_000 + 8_192];
        let low = dft_magnitude(w, 44_100.0, 130.81);
        let high: f64 = (5..=7)
            .map(|k| dft_magnitude(w, 44_100.0, 130.81 * k as f64 * 1.0005))
            .sum();
        high / low
    };
    let (loud, soft) = (brightness(127), brightness(20));
    assert!(loud > 2.0 * soft, "loud {loud}, soft {soft}");
}

#[test]
fn wav_is_16_bit_pcm_by_default() {
    let format = Format::STEREO_44K;
    let samples = render(&[note(0.0, 0.2, 69, 80)], format).unwrap();
    let wav = wav_bytes(&samples, format, WavEncoding::default()).unwrap();
    let reader = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.bits_per_sample, spec.sample_format, spec.channels),
        (16, hound::SampleFormat::Int, 2)
    );
    assert_eq!(reader.len() as usize, samples.len());
}

#[test]
fn player_falls_back_without_a_sound_card() {
    use nanotune::sound::audio::{self, Player};
    let status = audio::probe();
    // One line, whatever the machine.
    assert!(!status.to_string().contains('\n'), "{status}");
    let notes = [note(0.0, 0.3, 60, 80)];
    match Player::new() {
        Err(no_audio) => {
            assert!(!status.is_available());
            assert!(no_audio.to_string().starts_with("no audio device: "));
        }
        Ok(mut player) => {
            // A machine with a sound card: it plays, pauses and stops without panicking.
            player.set_volume(0.0);
            player.play(&notes).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100));
            assert!(player.toggle_pause());
            assert!(!player.toggle_pause());
            player.stop();
            assert!(!player.is_playing());
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("out.wav");
    // Without one, what would play is written to a WAV file, streamed block by block.
    nanotune::sound::voice::Voice::Builtin
        .render_wav_file(&wav, &notes, Format::STEREO_44K, WavEncoding::Pcm16)
        .unwrap();
    let reader = hound::WavReader::open(&wav).unwrap();
    assert_eq!(reader.len() as u64, 2 * length_frames(&notes, 44_100));
}

#[test]
fn play_command_saves_a_wav_and_keeps_stderr_clean_without_a_sound_card() {
    if nanotune::sound::audio::probe().is_available() {
        eprintln!("SKIPPED: this machine has a sound card");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let words = dir.path().join("tune.txt");
    std::fs::write(&words, "START n60 d4 n64 d4 sepxx d4 n67 d8 END").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nanotune"))
        .arg("play")
        .arg(&words)
        .current_dir(dir.path())
        // The variable would ask for a SoundFont (and a line saying which).
        .env_remove("NANOTUNE_SOUNDFONT")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("no audio device: saved tune.wav"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 1);
    // No libasound noise.
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(hound::WavReader::open(dir.path().join("tune.wav")).is_ok());
}

#[test]
fn render_command_honours_the_midi_tempo_map() {
    use nanotune::music::midi::{read_midi, write_midi};
    use nanotune::music::notes::Note;
    let dir = tempfile::tempdir().unwrap();
    let mid = dir.path().join("in.mid");
    let grid = [Note {
        onset: 0,
        pitch: 60,
        duration: 8,
    }];
    std::fs::write(&mid, write_midi(&grid, 60.0).unwrap()).unwrap();
    // Its own tempo: 8 steps = 2 quarters at 60 bpm = 2 s; --bpm 120 makes it 1 s.
    let piece = read_midi(&std::fs::read(&mid).unwrap()).unwrap();
    assert_eq!(timed::from_midi(&piece, None)[0].duration, 2.0);
    assert_eq!(timed::from_midi(&piece, Some(120.0))[0].duration, 1.0);
    for (args, seconds) in [(vec![], 2.0), (vec!["--bpm", "120"], 1.0)] {
        let wav = dir.path().join("out.wav");
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_nanotune"))
            .arg("render")
            .arg(&mid)
            .arg("-o")
            .arg(&wav)
            .args(&args)
            .output()
            .unwrap();
        assert!(status.status.success());
        let reader = hound::WavReader::open(&wav).unwrap();
        let frames = ((seconds + RELEASE_SECONDS) * 44_100.0f64).ceil() as u32;
        assert_eq!(reader.len(), 2 * frames);
        assert_eq!(reader.spec().bits_per_sample, 16);
    }
}
