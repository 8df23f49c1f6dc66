//! The SoundFont voice on real data: a pianobooster piece through Debian's TimGM6mb General MIDI
//! SoundFont beside the built-in voice; pitch, velocity and headroom; finding a SoundFont; the
//! commands; and truncated, random, foreign and damaged files, which give one line of error that
//! names the file, and never a panic.

mod common;

use nanotune::music::midi::read_midi;
use nanotune::sound::format::Format;
use nanotune::sound::renderer::{length_frames, render};
use nanotune::sound::soundfont::{find, Found, SearchPlaces, SoundFont};
use nanotune::sound::timed::{self, TimedNote};
use nanotune::sound::voice::Voice;
use nanotune::sound::wav::WavEncoding;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn note(start: f64, duration: f64, pitch: u8, velocity: u8) -> TimedNote {
    TimedNote::new(start, duration, pitch, velocity)
}

fn gm_voice() -> Option<Voice> {
    let path = common::gm_soundfont()?;
    Some(Voice::SoundFont(SoundFont::load(&path).unwrap()))
}

fn peak(samples: &[f32]) -> f32 {
    samples.iter().fold(0.0f32, |m, &s| m.max(s.abs()))
}

fn rms(samples: &[f32]) -> f64 {
    (samples.iter().map(|&s| s as f64 * s as f64).sum::<f64>() / samples.len().max(1) as f64).sqrt()
}

/// Loudness of a stereo rendering per 50 ms, to compare when two renderings sound.
fn envelope(stereo: &[f32]) -> Vec<f64> {
    stereo.chunks(2 * 2_205).map(rms).collect()
}

/// Pearson correlation of the overlapping start of two series.
fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mean = |x: &[f64]| x.iter().sum::<f64>() / n as f64;
    let (ma, mb) = (mean(a), mean(b));
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let var = |x: &[f64], m: f64| x.iter().map(|v| (v - m) * (v - m)).sum::<f64>();
    cov / (var(a, ma) * var(b, mb)).sqrt()
}

fn read_wav(path: &Path) -> (hound::WavSpec, Vec<f32>) {
    let mut reader = hound::WavReader::open(path).unwrap();
    let samples = reader
        .samples::<i16>()
        .map(|s| s.unwrap() as f32 / 32767.0)
        .collect();
    (reader.spec(), samples)
}

fn nanotune(args: &[&str], dir: &Path, soundfont_variable: Option<&Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nanotune"));
    command.args(args).current_dir(dir);
    match soundfont_variable {
        Some(path) => command.env("NANOTUNE_SOUNDFONT", path),
        None => command.env_remove("NANOTUNE_SOUNDFONT"),
    };
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_real_piano_piece_through_a_general_midi_soundfont() {
    let (Some(voice), Some(piece)) = (gm_voice(), common::piano_piece()) else {
        return;
    };
    let midi = read_midi(&std::fs::read(&piece).unwrap()).unwrap();
    let notes = timed::from_midi(&midi, None);
    let format = Format::STEREO_44K;
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("soundfont.wav");
    voice
        .render_wav_file(&wav, &notes, format, WavEncoding::Pcm16)
        .unwrap();
    let (spec, samples) = read_wav(&wav);
    assert_eq!((spec.channels, spec.sample_rate), (2, 44_100));

    // Length: the last note-off, then the font's release and reverb (a second or so).
    let last_off = notes.iter().map(|n| n.end()).fold(0.0, f64::max);
    assert!(last_off > 40.0, "the piece lasts {last_off} s");
    let seconds = samples.len() as f64 / 2.0 / 44_100.0;
    assert!(
        (seconds - voice.length_seconds(&notes)).abs() < 2.0 / 44_100.0,
        "{seconds} s"
    );
    assert!(
        seconds > last_off + 0.5 && seconds < last_off + 4.0,
        "{seconds} s for music ending at {last_off} s"
    );
    // It has died away before the last 50 ms fade to silence (no note hangs on).
    let tail = &samples[samples.len() - 2 * 4_410..samples.len() - 2 * 2_646];
    assert!(
        peak(tail) < 1e-3,
        "60-100 ms before the end: peak {}",
        peak(tail)
    );

    // Level: as loud as the built-in voice within a factor of two, and never clipped.
    let builtin = render(&notes, format).unwrap();
    let (level, builtin_level) = (rms(&samples), rms(&builtin));
    assert!(
        level > 0.5 * builtin_level && level < 2.0 * builtin_level,
        "SoundFont rms {level}, built-in {builtin_level}"
    );
    assert!(
        peak(&samples) > 0.1 && peak(&samples) < 0.99,
        "{}",
        peak(&samples)
    );

    // Another sound of the same music: the samples differ throughout, but the loudness follows
    // the same notes at the same times (and not when shifted by a second).
    let n = samples.len().min(builtin.len());
    let difference: Vec<f32> = (0..n).map(|i| samples[i] - builtin[i]).collect();
    assert!(
        rms(&difference) > 0.5 * level,
        "difference {} of {level}",
        rms(&difference)
    );
    let (ours, theirs) = (envelope(&samples), envelope(&builtin));
    let aligned = correlation(&ours, &theirs);
    let shifted = correlation(&ours[20..], &theirs);
    assert!(
        aligned > 0.6 && aligned > shifted + 0.2,
        "loudness correlation {aligned}, shifted by 1 s {shifted}"
    );
}

#[test]
fn middle_c_sounds_at_261_hz_and_velocity_is_loudness() {
    let Some(voice) = gm_voice() else {
        return;
    };
    let format = Format::new(44_100, 1).unwrap();
    let samples = voice.render(&[note(0.0, 1.5, 60, 100)], format).unwrap();
    let window = &samples[4_410..4_410 + 44_100];
    let at = |f: f64| common::dft_magnitude(window, 44_100.0, f);
    // A sampled piano's strongest partial may be the second: the loudest peak is a harmonic of
    // middle C, whose fundamental stands far above the semitones beside it and the octave below.
    let (mut best, mut best_freq) = (0.0, 0.0);
    let mut f = 100.0;
    while f < 2_000.0 {
        if at(f) > best {
            (best, best_freq) = (at(f), f);
        }
        f += 0.5;
    }
    let harmonic = (best_freq / 261.63).round();
    assert!(
        (1.0..=4.0).contains(&harmonic) && (best_freq / harmonic - 261.63).abs() / 261.63 < 0.005,
        "spectral peak at {best_freq} Hz"
    );
    let c4 = at(261.63);
    for (name, f) in [("B3", 246.94), ("C#4", 277.18), ("C3", 130.81)] {
        assert!(c4 > 5.0 * at(f), "C4 {c4}, {name} {}", at(f));
    }
    let loudness = |velocity| {
        rms(&voice
            .render(&[note(0.0, 1.0, 60, velocity)], format)
            .unwrap())
    };
    let (soft, loud) = (loudness(30), loudness(120));
    assert!(loud > 2.0 * soft, "velocity 120: {loud}, 30: {soft}");
    // A note of no length, and a key struck again at its note-off, end like the others.
    let notes = [
        note(0.0, 0.0, 60, 100),
        note(0.5, 0.5, 64, 100),
        note(1.0, 0.5, 64, 100),
    ];
    let samples = voice.render(&notes, format).unwrap();
    let quiet = &samples[samples.len() - 4_410..samples.len() - 2_646];
    assert!(peak(quiet) < 1e-3, "peak {} before the fade", peak(quiet));
    // A silent note is silence, as long as the note and its tail, as with the built-in voice.
    let silent = voice.render(&[note(0.0, 1.0, 60, 0)], format).unwrap();
    assert!(silent.len() > 44_100 && silent.iter().all(|&s| s == 0.0));
}

#[test]
fn ten_note_chord_struck_three_times_at_full_velocity_never_clips() {
    let Some(voice) = gm_voice() else {
        return;
    };
    let chord: Vec<TimedNote> = [36u8, 40, 43, 48, 52, 55, 60, 64, 67, 72]
        .iter()
        .map(|&p| note(0.0, 2.0, p, 127))
        .collect();
    let mut notes = chord.clone();
    for (i, n) in chord.iter().enumerate() {
        notes.push(note(0.5 + i as f64 * 0.001, 1.0, n.pitch + 12, 127));
        notes.push(note(1.0, 1.0, n.pitch, 127));
    }
    for format in [Format::STEREO_44K, Format::new(48_000, 1).unwrap()] {
        let samples = voice.render(&notes, format).unwrap();
        let p = peak(&samples);
        assert!(p < 1.0, "peak {p}");
        assert!(p > 0.5, "the chord should be loud, peak {p}");
    }
}

/// A piece rendered while it is made (its notes in parts, each part after the point where the
/// piece was whole) sounds through the SoundFont as the whole piece does.
#[test]
fn a_piece_made_in_parts_sounds_as_the_whole_through_the_soundfont() {
    let Some(voice) = gm_voice() else {
        return;
    };
    let notes: Vec<TimedNote> = (0..30)
        .map(|i| {
            note(
                i as f64 * 0.13,
                0.4,
                48 + (i * 5 % 31) as u8,
                50 + 2 * i as u8,
            )
        })
        .collect();
    let format = Format::STEREO_44K;
    let whole = voice.render(&notes, format).unwrap();
    let part = |from: f64, to: f64| -> Vec<TimedNote> {
        let mut part: Vec<TimedNote> = notes.to_vec();
        part.retain(|n| n.start >= from && n.start < to);
        part
    };
    let mut renderer = voice
        .renderer(&part(0.0, 1.0), format)
        .unwrap()
        .hold_at(1.0);
    let mut got = Vec::new();
    let mut buf = vec![0.0f32; 2 * 512];
    let mut drain = |r: &mut nanotune::sound::renderer::Renderer, got: &mut Vec<f32>| {
        while let n @ 1.. = r.fill(&mut buf) {
            got.extend_from_slice(&buf[..2 * n]);
        }
    };
    drain(&mut renderer, &mut got);
    renderer.append(&part(1.0, 2.2), Some(2.2)).unwrap();
    drain(&mut renderer, &mut got);
    renderer.append(&part(2.2, f64::INFINITY), None).unwrap();
    drain(&mut renderer, &mut got);
    assert_eq!(got.len(), whole.len());
    assert_eq!(got, whole);
}

#[test]
fn the_soundfont_wav_file_is_its_rendering_streamed() {
    let Some(voice) = gm_voice() else {
        return;
    };
    let notes = [note(0.0, 0.5, 60, 90), note(0.5, 0.5, 64, 90)];
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("out.wav");
    let format = Format::STEREO_44K;
    voice
        .render_wav_file(&wav, &notes, format, WavEncoding::Pcm16)
        .unwrap();
    let expected = voice.render(&notes, format).unwrap();
    let (_, saved) = read_wav(&wav);
    assert_eq!(saved.len(), expected.len());
    assert!(saved
        .iter()
        .zip(&expected)
        .all(|(a, b)| (a - b).abs() <= 1.0 / 32767.0));
    assert_ne!(expected.len(), render(&notes, format).unwrap().len());
}

#[test]
fn find_takes_the_flag_then_the_variable_then_the_folders() {
    let dir = tempfile::tempdir().unwrap();
    let (empty, fonts, variable_dir) = (
        dir.path().join("empty"),
        dir.path().join("fonts"),
        dir.path().join("variable"),
    );
    for d in [&empty, &fonts, &variable_dir] {
        std::fs::create_dir(d).unwrap();
    }
    for name in ["b.sf2", "a.SF2", "c.sf3", "notes.txt"] {
        std::fs::write(fonts.join(name), b"").unwrap();
    }
    std::fs::write(variable_dir.join("mine.sf2"), b"").unwrap();
    let named = Path::new("/x/named.sf2");
    let variable = dir.path().join("from-variable.sf2");
    let places = |variable: Option<&Path>| SearchPlaces {
        variable: variable.map(|v| v.as_os_str().to_owned()),
        folders: vec![empty.clone(), dir.path().join("absent"), fonts.clone()],
    };
    // Not asked: the built-in voice.
    assert_eq!(find(None, &places(None)).unwrap(), None);
    // A named file wins over everything, even one that does not exist (load says so).
    assert_eq!(
        find(Some(Some(named)), &places(Some(&variable))).unwrap(),
        Some(Found::Named(named.into()))
    );
    // A set variable asks, flag or not.
    for flag in [None, Some(None)] {
        assert_eq!(
            find(flag, &places(Some(&variable))).unwrap(),
            Some(Found::FromVariable(variable.clone()))
        );
    }
    // A variable naming a folder: its SoundFont.
    assert_eq!(
        find(None, &places(Some(&variable_dir))).unwrap(),
        Some(Found::FromVariable(variable_dir.join("mine.sf2")))
    );
    // A bare flag searches the folders in order: the first .sf2 by name (not .sf3).
    let found = find(Some(None), &places(None)).unwrap().unwrap();
    assert_eq!(
        found,
        Found::Searched {
            path: fonts.join("a.SF2"),
            folder: fonts.clone()
        }
    );
    assert!(
        found.to_string().contains("the first SoundFont in"),
        "{found}"
    );
    // Debian's default-GM.sf2 is the folder's choice.
    std::fs::write(fonts.join("default-GM.sf2"), b"").unwrap();
    assert_eq!(
        find(Some(None), &places(None)).unwrap().unwrap().path(),
        fonts.join("default-GM.sf2")
    );
    // Nothing anywhere: one line that says where it looked and what to do.
    let nowhere = SearchPlaces {
        variable: None,
        folders: vec![empty.clone()],
    };
    let e = find(Some(None), &nowhere).unwrap_err().to_string();
    assert!(
        !e.contains('\n') && e.contains(&*empty.to_string_lossy()),
        "{e}"
    );
    assert!(
        e.contains("--soundfont") && e.contains("fluid-soundfont-gm"),
        "{e}"
    );
    // The process's places start with the variable, then Debian's folder.
    let here = SearchPlaces::from_env();
    assert_eq!(here.folders[0], PathBuf::from("/usr/share/sounds/sf2"));
    assert!(here
        .folders
        .iter()
        .any(|f| f.ends_with("nanotune/soundfonts")));
}

/// The 'inst' sub-chunk of a SoundFont: (offset of its data, its length).
fn inst_chunk(bytes: &[u8]) -> (usize, usize) {
    let size = |at: usize| u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let end = at + 8 + size(at);
        let mut sub = at + 12;
        while &bytes[at..at + 4] == b"LIST" && sub + 8 <= end {
            if &bytes[sub..sub + 4] == b"inst" {
                return (sub + 8, size(sub));
            }
            sub += 8 + size(sub);
        }
        at = end;
    }
    panic!("no inst chunk");
}

/// Bad SoundFonts of every kind, with a word their error must hold.
fn bad_files(real: &[u8]) -> Vec<(String, Vec<u8>, &'static str)> {
    let mut out: Vec<(String, Vec<u8>, &'static str)> = vec![
        ("empty.sf2".into(), Vec::new(), "empty"),
        (
            "text.sf2".into(),
            b"not a soundfont at all".to_vec(),
            "not a SoundFont",
        ),
        ("header.sf2".into(), real[..4].to_vec(), "truncated"),
        (
            "wave.sf2".into(),
            b"RIFF\x24\0\0\0WAVEfmt ".to_vec(),
            "not a SoundFont",
        ),
    ];
    for (i, cut) in [11, 12, 100, 5_000, real.len() / 2, real.len() - 1]
        .into_iter()
        .enumerate()
    {
        out.push((format!("cut-{i}.sf2"), real[..cut].to_vec(), "truncated"));
    }
    // Cut, then the RIFF size mended to match: the chunks inside do not fit.
    let mut mended = real[..real.len() / 3].to_vec();
    let riff = (mended.len() - 8) as u32;
    mended[4..8].copy_from_slice(&riff.to_le_bytes());
    out.push(("mended.sf2".into(), mended, "truncated"));
    // The instrument table's terminator points past the zones: rustysynth's parser would panic.
    let mut tables = real.to_vec();
    let (at, len) = inst_chunk(&tables);
    tables[at + len - 2..at + len].copy_from_slice(&[0xff, 0xff]);
    out.push(("tables.sf2".into(), tables, "damaged"));
    let mut rng = StdRng::seed_from_u64(21);
    for i in 0..20 {
        let mut bytes: Vec<u8> = (0..rng.random_range(1..20_000))
            .map(|_| rng.random())
            .collect();
        let expect = if i % 2 == 1 && bytes.len() >= 12 {
            // Behind a real header that claims the file's length, so that the noise reaches
            // the chunk walk.
            bytes[..12].copy_from_slice(&real[..12]);
            let riff = (bytes.len() - 8) as u32;
            bytes[4..8].copy_from_slice(&riff.to_le_bytes());
            ""
        } else {
            "not a SoundFont"
        };
        out.push((format!("random-{i}.sf2"), bytes, expect));
    }
    out
}

#[test]
fn truncated_random_foreign_and_damaged_files_are_one_line_errors() {
    let Some(path) = common::gm_soundfont() else {
        return;
    };
    let real = std::fs::read(path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, word) in bad_files(&real) {
        let file = dir.path().join(&name);
        std::fs::write(&file, &bytes).unwrap();
        let e = SoundFont::load(&file).unwrap_err().to_string();
        assert!(!e.contains('\n'), "{e}");
        assert!(e.starts_with(&*file.to_string_lossy()), "{e}");
        assert!(e.contains(word), "{name}: {e}");
    }
    let missing = dir.path().join("missing.sf2");
    let e = SoundFont::load(&missing).unwrap_err().to_string();
    assert!(
        e.contains("missing.sf2") && e.contains("cannot read"),
        "{e}"
    );

    // Noise in the instrument and sample tables, their headers intact: an error or a font that plays, but
    // never a panic.
    let (at, _) = inst_chunk(&real);
    let tables = at - 8..real.len();
    let mut rng = StdRng::seed_from_u64(64);
    for trial in 0..12 {
        let mut bytes = real.clone();
        for _ in 0..8 {
            let i = rng.random_range(tables.clone());
            // Leave the chunk headers, so that the noise reaches the parser.
            if !(at - 8..at).contains(&i) {
                bytes[i] = rng.random();
            }
        }
        let file = dir.path().join(format!("noise-{trial}.sf2"));
        std::fs::write(&file, &bytes).unwrap();
        if let Ok(font) = SoundFont::load(&file) {
            let notes: Vec<TimedNote> = (0..40)
                .map(|k| note(k as f64 * 0.01, 0.2, 21 + 2 * k, 100))
                .collect();
            let _ = Voice::SoundFont(font).render(&notes, Format::STEREO_44K);
        }
    }
}

#[test]
fn commands_name_a_bad_soundfont_in_one_line_and_exit_non_zero() {
    let Some(path) = common::gm_soundfont() else {
        return;
    };
    let real = std::fs::read(path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tune.txt"), "START n60 d4 n64 d4 END").unwrap();
    let bad = bad_files(&real);
    let picks = [
        "cut-4.sf2",
        "random-3.sf2",
        "tables.sf2",
        "wave.sf2",
        "missing.sf2",
    ];
    for name in picks {
        if let Some((_, bytes, _)) = bad.iter().find(|(n, _, _)| n == name) {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let flag = format!("--soundfont={name}");
        let render = ["render", "tune.txt", "-o", "out.wav", &flag];
        let play = ["play", "tune.txt", &flag];
        for args in [&render[..], &play[..]] {
            let command = args[0];
            let out = nanotune(args, dir.path(), None);
            let stderr = text(&out.stderr);
            assert!(!out.status.success(), "{command} {name}");
            assert_eq!(stderr.lines().count(), 1, "{command} {name}: {stderr}");
            assert!(
                stderr.starts_with(&format!("error: {name}: ")),
                "{command} {name}: {stderr}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
        // The variable's file is checked the same way.
        let out = nanotune(
            &["render", "tune.txt", "-o", "out.wav"],
            dir.path(),
            Some(Path::new(name)),
        );
        assert!(!out.status.success());
        assert_eq!(
            text(&out.stderr).lines().count(),
            1,
            "{}",
            text(&out.stderr)
        );
    }
    assert!(!dir.path().join("out.wav").exists());
    assert!(!dir.path().join("tune.wav").exists());
}

#[test]
fn render_play_and_bench_take_a_soundfont() {
    let (Some(font_path), Some(piece)) = (common::gm_soundfont(), common::piano_piece()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&piece, dir.path().join("piece.mid")).unwrap();
    let font = font_path.to_str().unwrap();
    let voice = Voice::SoundFont(SoundFont::load(&font_path).unwrap());
    let notes = timed::from_midi(&read_midi(&std::fs::read(&piece).unwrap()).unwrap(), None);
    let frames = (voice.length_seconds(&notes) * 44_100.0).ceil() as usize;

    // Named: silent on stderr, named on stdout.
    let out = nanotune(
        &[
            "render",
            "piece.mid",
            "-o",
            "named.wav",
            "--soundfont",
            font,
        ],
        dir.path(),
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("(TimGM6mb.sf2 voice)"),
        "{}",
        text(&out.stdout)
    );
    let (_, named) = read_wav(&dir.path().join("named.wav"));
    assert_eq!(named.len(), 2 * frames);

    // From the variable: the same file, and one line saying where it came from.
    let out = nanotune(
        &["render", "piece.mid", "-o", "variable.wav"],
        dir.path(),
        Some(&font_path),
    );
    assert!(out.status.success());
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!("voice: TimGM6mb.sf2 ({font}, from $NANOTUNE_SOUNDFONT)")
    );
    assert_eq!(
        std::fs::read(dir.path().join("variable.wav")).unwrap(),
        std::fs::read(dir.path().join("named.wav")).unwrap()
    );

    // A bare flag searches the system folders (where .ci/run's package put one).
    let out = nanotune(
        &["render", "piece.mid", "--soundfont", "-o", "found.wav"],
        dir.path(),
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1);
    assert!(
        stderr.starts_with("voice: ") && stderr.contains("the first SoundFont in /usr/share/"),
        "{stderr}"
    );

    // Neither: the built-in voice, as before.
    let out = nanotune(
        &["render", "piece.mid", "-o", "builtin.wav"],
        dir.path(),
        None,
    );
    assert!(out.status.success() && out.stderr.is_empty());
    let (_, builtin) = read_wav(&dir.path().join("builtin.wav"));
    assert_eq!(builtin.len(), 2 * length_frames(&notes, 44_100) as usize);

    // play without a sound card saves what render writes.
    if !nanotune::sound::audio::probe().is_available() {
        let out = nanotune(
            &["play", "piece.mid", "--soundfont", font],
            dir.path(),
            None,
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(
            std::fs::read(dir.path().join("piece.wav")).unwrap(),
            std::fs::read(dir.path().join("named.wav")).unwrap()
        );
    }

    // bench render: both voices' figures, one line each.
    let out = nanotune(
        &["bench", "render", "piece.mid", "--soundfont", font],
        dir.path(),
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for name in ["built-in:", "TimGM6mb.sf2:"] {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line in {stdout}"));
        assert!(line.contains("x real time per CPU second"), "{line}");
    }
}
