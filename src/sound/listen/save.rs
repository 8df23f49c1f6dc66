//! Saving the pieces a listener receives: a MIDI file per piece inside the save folder, named
//! after the title, which is never taken as a path.

use crate::fsutil::write_atomic;
use crate::sound::piece::Piece;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// Longest file name made from a title, in characters (before `-N.mid`).
const MAX_NAME_CHARS: usize = 60;

/// A file name made from a title: letters, digits, spaces, `-` and `_` kept, anything else
/// (`/`, `.`, `\`, control characters) turned into `_`, runs of `_` and the ends trimmed.
/// Nothing is left of `../../etc/x` but `etc_x`; an empty result is `piece`.
pub fn file_stem(title: &str) -> String {
    let mut stem = String::new();
    for c in title.chars() {
        let keep = c.is_alphanumeric() || c == ' ' || c == '-' || c == '_';
        let c = if keep { c } else { '_' };
        if c == '_' && stem.ends_with('_') {
            continue;
        }
        stem.push(c);
    }
    let stem: String = stem
        .trim_matches(|c: char| c == '_' || c == ' ')
        .chars()
        .take(MAX_NAME_CHARS)
        .collect();
    let stem = stem.trim_end_matches([' ', '_']);
    if stem.is_empty() {
        "piece".into()
    } else {
        stem.into()
    }
}

/// Writes `piece` into `dir` as `<title>.mid` (or `<title>-2.mid`, ... when taken), atomically;
/// returns the path written.
pub fn save_piece(dir: &Path, piece: &Piece) -> Result<PathBuf> {
    let bytes = piece.to_midi_file()?;
    let stem = file_stem(&piece.title);
    for n in 1..=10_000 {
        let name = if n == 1 {
            format!("{stem}.mid")
        } else {
            format!("{stem}-{n}.mid")
        };
        let path = dir.join(&name);
        // The name is one plain component, so this holds; checked anyway, as the last word on
        // where a stranger's title may write.
        if path.parent() != Some(dir) || path.file_name() != Some(name.as_ref()) {
            bail!("refusing to save {name:?} outside {}", dir.display());
        }
        if std::fs::symlink_metadata(&path).is_err() {
            write_atomic(&path, &bytes)?;
            return Ok(path);
        }
    }
    bail!("{} already holds 10000 pieces named {stem}", dir.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::notes::Note;

    #[test]
    fn titles_never_leave_the_folder() {
        assert_eq!(file_stem("../../etc/x"), "etc_x");
        assert_eq!(file_stem("/etc/passwd"), "etc_passwd");
        assert_eq!(file_stem(".."), "piece");
        assert_eq!(file_stem(""), "piece");
        assert_eq!(file_stem("a\\b\u{0}c\nd"), "a_b_c_d");
        assert_eq!(file_stem("Für Elise (op. 59)"), "Für Elise _op_ 59");
        assert_eq!(file_stem(&"x".repeat(500)).len(), MAX_NAME_CHARS);
    }

    #[test]
    fn pieces_get_a_file_each_inside_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let notes = [Note {
            onset: 0,
            pitch: 60,
            duration: 4,
        }];
        let piece = Piece::from_grid("../../etc/x", &notes, 120.0);
        let first = save_piece(dir.path(), &piece).unwrap();
        let second = save_piece(dir.path(), &piece).unwrap();
        assert_eq!(first, dir.path().join("etc_x.mid"));
        assert_eq!(second, dir.path().join("etc_x-2.mid"));
        let back = Piece::read_midi_file("x", &std::fs::read(&first).unwrap()).unwrap();
        assert_eq!(back.score.grid_notes(), notes.to_vec());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
