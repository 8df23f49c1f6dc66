//! Real data for the tests: MIDI files from Debian's packages and the seed corpus.
//!
//! Where the data cannot be had, a test prints why and returns early, except under CI (`CI` set),
//! where missing data fails the test so a green run always means the real data was checked.
#![allow(dead_code)]

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
        let words =
            nanotune::learn::corpus::piece_from_text(&text, &mut Default::default()).unwrap();
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
