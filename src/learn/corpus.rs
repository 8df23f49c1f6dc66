//! Corpus loading: the seed's word corpus (a folder of `.txt` files or the shipped `.tar.xz`) and
//! folders of MIDI files, each piece read as canonical words ([`crate::music::read`]) and sorted
//! into its split.

use crate::learn::dataset::{Dataset, Split};
use crate::music::read::{piece_from_midi, piece_from_text, ReadReport};
use crate::music::words::{Titled, Vocab, Word};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest file read as one piece: far beyond any real piece (the corpus's largest is about
/// 1 MB), small enough that a hostile file cannot exhaust memory.
const MAX_FILE_BYTES: u64 = 64 << 20;

/// What loading saw, for the `prepare` report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LoadReport {
    pub files: usize,
    pub pieces: usize,
    pub words: usize,
    pub notes: usize,
    /// Pieces with no notes, not written.
    pub empty_pieces: Vec<String>,
    /// Files that could not be read, with why; loading carried on past them.
    pub bad_files: Vec<String>,
    /// What reading the pieces saw (flattened: the report's JSON keeps its keys).
    #[serde(flatten)]
    pub read: ReadReport,
    pub pieces_per_split: [usize; 3],
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Midi,
}

/// Splits a file name into title and kind by its extension. A name that is only an extension
/// (the seed corpus holds a `.txt`) is a piece with an empty title.
fn split_name(path: &Path) -> Option<(String, Kind)> {
    let name = path.file_name()?.to_string_lossy();
    let (title, ext) = name.rsplit_once('.')?;
    let kind = match ext.to_ascii_lowercase().as_str() {
        "txt" => Kind::Text,
        "mid" | "midi" => Kind::Midi,
        _ => return None,
    };
    Some((title.to_string(), kind))
}

fn kind_of(path: &Path) -> Option<Kind> {
    split_name(path).map(|(_, kind)| kind)
}

/// The title of a piece: its file name without the extension.
fn title_of(path: &Path) -> String {
    split_name(path).map(|(title, _)| title).unwrap_or_default()
}

/// Progress of a load: items done so far and, where known, how many there are.
pub type Progress<'a> = &'a dyn Fn(usize, Option<usize>);

/// Loads every piece under `source`: a folder (searched recursively for `.txt`, `.mid` and
/// `.midi`), a `.tar.xz` of `.txt` files, or one file. Bad files are named in the report and
/// skipped. Pieces come back sorted by title, so the result never depends on directory order.
pub fn load(source: &Path, progress: Progress) -> Result<(Vec<Titled>, LoadReport)> {
    let mut report = LoadReport::default();
    let mut pieces = Vec::new();
    let name = source.to_string_lossy();
    if name.ends_with(".tar.xz") || name.ends_with(".txz") {
        load_tar_xz(source, &mut pieces, &mut report, progress)?;
    } else if source.is_dir() {
        let mut files = Vec::new();
        collect_files(source, &mut files)
            .with_context(|| format!("listing {}", source.display()))?;
        files.sort();
        if files.is_empty() {
            bail!("{} holds no .txt, .mid or .midi files", source.display());
        }
        for (i, path) in files.iter().enumerate() {
            load_file(path, &mut pieces, &mut report);
            progress(i + 1, Some(files.len()));
        }
    } else if source.is_file() {
        if kind_of(source).is_none() {
            bail!(
                "{}: expected a folder, a .tar.xz, a .txt or a .mid file",
                source.display()
            );
        }
        load_file(source, &mut pieces, &mut report);
    } else {
        bail!("{} does not exist", source.display());
    }
    pieces.sort_by(|a, b| a.title.cmp(&b.title));
    Ok((pieces, report))
}

/// The `.mid`/`.midi` files under `dir`, recursively, sorted.
pub fn midi_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    collect_files(dir, &mut files)?;
    files.retain(|p| matches!(kind_of(p), Some(Kind::Midi)));
    files.sort();
    Ok(files)
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            collect_files(&path, out)?;
        } else if kind_of(&path).is_some() {
            out.push(path);
        }
    }
    Ok(())
}

fn load_file(path: &Path, pieces: &mut Vec<Titled>, report: &mut LoadReport) {
    let result = (|| -> Result<Vec<Word>> {
        let size = std::fs::metadata(path)?.len();
        if size > MAX_FILE_BYTES {
            bail!("{size} bytes is too large for one piece");
        }
        let bytes = std::fs::read(path)?;
        match kind_of(path) {
            Some(Kind::Midi) => piece_from_midi(&bytes, &mut report.read),
            _ => {
                let text = std::str::from_utf8(&bytes).context("not UTF-8 text")?;
                piece_from_text(text, &mut report.read)
            }
        }
    })();
    report.files += 1;
    match result {
        Ok(words) => add_piece(title_of(path), words, pieces, report),
        Err(e) => report.bad_files.push(format!("{}: {e:#}", path.display())),
    }
}

fn add_piece(title: String, words: Vec<Word>, pieces: &mut Vec<Titled>, report: &mut LoadReport) {
    // START END and nothing else: a piece with no notes.
    if words.len() <= 2 {
        report.empty_pieces.push(title);
        return;
    }
    report.pieces += 1;
    report.words += words.len();
    report.notes += words.iter().filter(|w| matches!(w, Word::Note(_))).count();
    // The seed corpus's file with an empty name is a piece without a title.
    let title = (!title.is_empty()).then_some(title);
    pieces.push(Titled { title, words });
}

fn load_tar_xz(
    path: &Path,
    pieces: &mut Vec<Titled>,
    report: &mut LoadReport,
    progress: Progress,
) -> Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut archive = tar::Archive::new(xz2::read::XzDecoder::new(std::io::BufReader::new(file)));
    let entries = archive
        .entries()
        .with_context(|| format!("{} is not a tar.xz archive", path.display()))?;
    let mut text = String::new();
    for entry in entries {
        let mut entry = entry.with_context(|| format!("{} is damaged", path.display()))?;
        let entry_path = entry.path()?.into_owned();
        if !entry.header().entry_type().is_file() || kind_of(&entry_path) != Some(Kind::Text) {
            continue;
        }
        report.files += 1;
        text.clear();
        let read = (&mut entry)
            .take(MAX_FILE_BYTES)
            .read_to_string(&mut text)
            .map_err(anyhow::Error::from)
            .and_then(|_| {
                if entry.header().size()? > MAX_FILE_BYTES {
                    bail!("too large for one piece");
                }
                Ok(())
            });
        match read.and_then(|()| piece_from_text(&text, &mut report.read)) {
            Ok(words) => add_piece(title_of(&entry_path), words, pieces, report),
            Err(e) => report.bad_files.push(format!(
                "{}:{}: {e:#}",
                path.display(),
                entry_path.display()
            )),
        }
        progress(report.files, None);
    }
    Ok(())
}

/// Sorts pieces into their splits (by title, see [`Split::of_title`]) as token ids.
pub fn build_dataset(pieces: &[Titled], report: &mut LoadReport) -> Result<Dataset> {
    let mut dataset = Dataset::default();
    for piece in pieces {
        let title = piece.title.as_deref().unwrap_or_default();
        let ids = Vocab
            .encode(&piece.words)
            .with_context(|| format!("piece '{title}' is not canonical"))?;
        let split = Split::of_title(title);
        dataset.split_mut(split).push(title, &ids);
        report.pieces_per_split[split as usize] += 1;
    }
    dataset.report = serde_json::to_value(&*report)?;
    Ok(dataset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::words::words_to_string;

    #[test]
    fn seed_text_is_normalised() {
        let mut r = ReadReport::default();
        let w = piece_from_text(
            "START n60 d4 n60 d2 sepxx d300 n62 d1 bogus n64 d200",
            &mut r,
        )
        .unwrap();
        assert_eq!(
            words_to_string(&w),
            "START n60 d4 sepxx d128 sepxx d128 sepxx d44 n64 d128 n62 d1 END"
        );
        assert_eq!(
            (r.unknown_words, r.duplicate_notes, r.notes_cut_to_128),
            (1, 1, 1)
        );
    }

    #[test]
    fn folder_load_skips_bad_files_and_names_them() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("deep/er");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(dir.path().join("b.txt"), "START n60 d4").unwrap();
        std::fs::write(dir.path().join("empty.txt"), "").unwrap();
        std::fs::write(sub.join("broken.mid"), b"MThd garbage").unwrap();
        std::fs::write(sub.join("latin1.txt"), b"START \xff").unwrap();
        std::fs::write(dir.path().join("ignored.json"), "{}").unwrap();
        let (pieces, report) = load(dir.path(), &|_, _| {}).unwrap();
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].title.as_deref(), Some("b"));
        assert_eq!(report.files, 4);
        assert_eq!(report.empty_pieces, vec!["empty".to_string()]);
        assert_eq!(report.bad_files.len(), 2);
        assert!(report.bad_files.iter().any(|b| b.contains("broken.mid")));
        assert!(load(&dir.path().join("missing"), &|_, _| {}).is_err());
    }
}
