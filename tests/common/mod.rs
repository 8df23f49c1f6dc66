//! Real data for the tests: MIDI files from Debian's packages, the seed corpus, and a General
//! MIDI SoundFont from Debian's timgm6mb-soundfont (installed by .ci/run; GPL, so never copied
//! into the repository).
//!
//! Where the data cannot be had, a test prints why and returns early, except under CI (`CI` set),
//! where missing data fails the test so a green run always means the real data was checked.
#![allow(dead_code)]

pub mod listener;
pub mod recorder;
pub mod screen;

use nanotune::learn::dataset::{Dataset, Split};
use nanotune::music::words::Vocab;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Debian packages that ship real MIDI files: piano exercises, game music with drums.
const MIDI_PACKAGES: [&str; 3] = ["pianobooster", "openttd-openmsx", "simutrans-data"];

fn missing(what: &str) -> Option<PathBuf> {
    if std::env::var_os("CI").is_some() {
        panic!("{what} (CI must have it: see .ci/run)");
    }
    eprintln!("SKIPPED: {what}");
    None
}

/// A folder of real `.mid` files, fetched once with `apt-get download` and cached under the
/// target folder.
pub fn debian_midi_dir() -> Option<PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("debian-midi");
        if dir.join(".complete").exists() {
            return Some(dir);
        }
        let work = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("debian-midi-fetch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(work.join("x")).unwrap();
        let fetched = Command::new("apt-get")
            .arg("download")
            .args(MIDI_PACKAGES)
            .current_dir(&work)
            .output();
        match fetched {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                return missing(&format!(
                    "apt-get download failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
            Err(e) => return missing(&format!("apt-get not available: {e}")),
        }
        for deb in std::fs::read_dir(&work).unwrap() {
            let deb = deb.unwrap().path();
            if deb.extension().is_some_and(|e| e == "deb") {
                let ok = Command::new("dpkg")
                    .arg("-x")
                    .arg(&deb)
                    .arg(work.join("x"))
                    .status();
                assert!(ok.is_ok_and(|s| s.success()), "dpkg -x {}", deb.display());
            }
        }
        std::fs::write(work.join("x/.complete"), b"").unwrap();
        // Another test binary may have finished first; either copy is complete.
        if std::fs::rename(work.join("x"), &dir).is_err() && !dir.join(".complete").exists() {
            panic!("could not place {}", dir.display());
        }
        let _ = std::fs::remove_dir_all(&work);
        Some(dir)
    })
    .clone()
}

/// Every `.mid` file under `dir`, sorted.
pub fn midi_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("mid")) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The seed's word corpus archive: `$NANOTUNE_CORPUS`, or `../shared/corpus/` beside the repo.
pub fn corpus_archive() -> Option<PathBuf> {
    let path = std::env::var_os("NANOTUNE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/adl-piano-words.tar.xz")
        });
    if path.exists() {
        Some(path)
    } else {
        missing(&format!("the seed corpus is not at {}", path.display()))
    }
}

/// Reads the first `n` pieces of the seed corpus archive (cheaper than loading it all): every
/// tenth to the validation split, the rest to training.
pub fn corpus_slice(archive: &Path, n: usize) -> Dataset {
    let file = std::fs::File::open(archive).unwrap();
    let mut tar = tar::Archive::new(xz2::read::XzDecoder::new(file));
    let mut ds = Dataset::default();
    let mut count = 0;
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_path_buf();
        if path.extension().is_none_or(|e| e != "txt") {
            continue;
        }
        let mut text = String::new();
        if std::io::Read::read_to_string(&mut entry, &mut text).is_err() {
            continue;
        }
        let words = nanotune::music::read::piece_from_text(&text, &mut Default::default()).unwrap();
        let ids = Vocab.encode(&words).unwrap();
        let split = if count % 10 == 0 {
            Split::Val
        } else {
            Split::Train
        };
        ds.split_mut(split).push(&path.to_string_lossy(), &ids);
        count += 1;
        if count == n {
            break;
        }
    }
    ds
}

/// The first `n` pieces of the seed corpus saved as a prepared dataset in a temporary folder
/// (kept while the folder lives); `None` where the corpus cannot be had.
pub fn corpus_dataset(n: usize) -> Option<(tempfile::TempDir, PathBuf)> {
    let archive = corpus_archive()?;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    corpus_slice(&archive, n).save(&data).unwrap();
    Some((tmp, data))
}

/// The validation losses a training run logged in `dir/log.csv`, in order.
pub fn logged_val_losses(dir: &Path) -> Vec<f64> {
    let log = std::fs::read_to_string(dir.join("log.csv")).unwrap();
    log.lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect()
}

/// The notes of `words` that start in `steps`.
pub fn notes_in(
    words: &[nanotune::music::words::Word],
    steps: std::ops::Range<u64>,
) -> Vec<nanotune::music::notes::Note> {
    let notes = nanotune::music::notes::from_words(words).notes;
    notes
        .into_iter()
        .filter(|n| steps.contains(&n.onset))
        .collect()
}

/// Where Debian's timgm6mb-soundfont package puts its General MIDI SoundFont.
pub const GM_SOUNDFONT: &str = "/usr/share/sounds/sf2/TimGM6mb.sf2";

/// A real General MIDI SoundFont: TimGM6mb (5.7 MB), installed with apt (see .ci/run).
pub fn gm_soundfont() -> Option<PathBuf> {
    let path = PathBuf::from(GM_SOUNDFONT);
    if path.is_file() {
        Some(path)
    } else {
        missing(&format!(
            "no SoundFont at {GM_SOUNDFONT} (apt-get install timgm6mb-soundfont)"
        ))
    }
}

/// A piano piece from pianobooster: Clair de Lune (207 notes, 48 s, its own velocities).
pub fn piano_piece() -> Option<PathBuf> {
    let dir = debian_midi_dir()?;
    let path = dir.join("usr/share/doc/pianobooster/courses/BoosterMusic/01-ClairDeLaLune.mid");
    assert!(path.is_file(), "{} is missing", path.display());
    Some(path)
}

/// Magnitude of the DFT of `x` at `freq` Hz (Hann window).
pub fn dft_magnitude(x: &[f32], sample_rate: f64, freq: f64) -> f64 {
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
