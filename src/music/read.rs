//! A piece file read as canonical words: a Standard MIDI File or a word text (the seed corpus's
//! format). Every reader of pieces comes here: `prepare` and the corpus, `encode`, `describe`,
//! `render` and `play` of word files, the prompts of the screen and of `generate`.

use crate::music::midi::{read_midi, MidiPiece};
use crate::music::notes::{canonical_words, canonicalise, from_words, CanonReport, Note};
use crate::music::words::{parse_words, Word};
use anyhow::{bail, Result};
use serde::Serialize;
use std::path::Path;

/// What reading saw: words and notes dropped or changed on the way to canonical words.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReadReport {
    /// Unknown words in text files, skipped.
    pub unknown_words: usize,
    /// Words that fit no pair (a lone duration, a pitch with no duration), skipped.
    pub skipped_words: usize,
    /// Notes on MIDI channel 10, skipped.
    pub drum_notes: usize,
    pub out_of_range_notes: usize,
    pub duplicate_notes: usize,
    pub notes_cut_by_restrike: usize,
    pub notes_cut_to_128: usize,
}

impl ReadReport {
    fn add_canon(&mut self, c: CanonReport) {
        self.out_of_range_notes += c.out_of_range;
        self.duplicate_notes += c.duplicates;
        self.notes_cut_by_restrike += c.cut_by_restrike;
        self.notes_cut_to_128 += c.cut_to_max;
    }
}

/// Longest piece accepted, in grid steps (about 6 days at 120 bpm): past this a file is hostile
/// or broken, and splitting its shifts into 128-step words would take unbounded memory.
pub const MAX_PIECE_STEPS: u64 = 1 << 22;

/// Refuses a piece longer than [`MAX_PIECE_STEPS`].
pub fn check_length(notes: &[Note]) -> Result<()> {
    let end = notes.iter().map(|n| n.onset).max().unwrap_or(0);
    if end > MAX_PIECE_STEPS {
        bail!("a note starts at step {end}, past the {MAX_PIECE_STEPS}-step limit of a piece");
    }
    Ok(())
}

/// Canonical words of a word text (the seed's corpus format: `END` may be missing, shifts may be
/// longer than 128, notes of one pitch may repeat or overlap).
pub fn piece_from_text(text: &str, report: &mut ReadReport) -> Result<Vec<Word>> {
    let (words, unknown) = parse_words(text);
    report.unknown_words += unknown;
    let decoded = from_words(&words);
    report.skipped_words += decoded.skipped;
    let mut notes = decoded.notes;
    check_length(&notes)?;
    report.add_canon(canonicalise(&mut notes));
    Ok(canonical_words(&notes))
}

/// Canonical words of a Standard MIDI File.
pub fn piece_from_midi(bytes: &[u8], report: &mut ReadReport) -> Result<Vec<Word>> {
    words_of_midi(&read_midi(bytes)?, report)
}

/// Canonical words of a MIDI file already read (by [`read_midi`]).
pub fn words_of_midi(piece: &MidiPiece, report: &mut ReadReport) -> Result<Vec<Word>> {
    report.drum_notes += piece.drum_notes;
    let mut notes = piece.grid_notes();
    check_length(&notes)?;
    report.add_canon(canonicalise(&mut notes));
    Ok(canonical_words(&notes))
}

/// Whether a file's name says MIDI (`.mid`, `.midi`, any case).
pub fn is_midi_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("mid") || e.eq_ignore_ascii_case("midi"))
}

/// Whether a file is a Standard MIDI File (by its name or its `MThd` start), not a word text.
pub fn is_midi(path: &Path, bytes: &[u8]) -> bool {
    is_midi_name(path) || bytes.starts_with(b"MThd")
}

/// The canonical words of a piece file: a Standard MIDI File ([`is_midi`]) or a word text.
pub fn read_file(path: &Path) -> Result<Vec<Word>> {
    use anyhow::Context;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let words = if is_midi(path, &bytes) {
        piece_from_midi(&bytes, &mut ReadReport::default())
    } else {
        piece_from_text(&String::from_utf8_lossy(&bytes), &mut ReadReport::default())
    };
    words.with_context(|| format!("reading {}", path.display()))
}
