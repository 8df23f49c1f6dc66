//! What the screen keeps between runs: its settings, in a TOML file in the user's config folder
//! (`~/.config/nanotune/settings.toml` on Linux, `~/Library/Application Support/nanotune` on
//! macOS: the `directories` crate's standard places), and the last piece made, beside it in the
//! data folder, so the next start shows it.
//!
//! Both files are written atomically. A file that cannot be read back (damaged, not TOML, values
//! of the wrong type) is reported in one line and the defaults are used; it is replaced at the
//! next save, never deleted. Unknown keys (from a newer nanotune, or typos) are named in the
//! report and ignored, so one stray line does not throw the other settings away.

use crate::fsutil::write_atomic;
use crate::music::words::{parse_words, words_to_string, Word};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The settings file's name inside the config folder.
pub const SETTINGS_FILE: &str = "settings.toml";
/// The keymap's file name, beside the settings file (see [`super::keys`]).
pub const KEYS_FILE: &str = "keys.toml";
/// The last piece's file name inside the data folder.
pub const LAST_PIECE_FILE: &str = "last-piece.toml";

/// The settings that stick. Each is optional: a missing one keeps the screen's default, so a file
/// written by an older nanotune still loads.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    #[serde(serialize_with = "number")]
    pub temperature: Option<f64>,
    #[serde(serialize_with = "number")]
    pub tokens: Option<f64>,
    #[serde(serialize_with = "number")]
    pub top_k: Option<f64>,
    #[serde(serialize_with = "number")]
    pub top_p: Option<f64>,
    #[serde(serialize_with = "number")]
    pub bpm: Option<f64>,
    #[serde(serialize_with = "number")]
    pub volume: Option<f64>,
    /// Length in bars (0 = by tokens).
    #[serde(serialize_with = "number")]
    pub bars: Option<f64>,
    #[serde(serialize_with = "number")]
    pub takes: Option<f64>,
    /// A key name (`G major`), `match prompt` or `off`.
    pub scale: Option<String>,
    /// A range of notes (`C3-C5`) or `off`.
    pub range: Option<String>,
    /// Notes at once at most (0 = off).
    #[serde(serialize_with = "number")]
    pub polyphony: Option<f64>,
    /// Notes per beat to steer toward (0 = off).
    #[serde(serialize_with = "number")]
    pub density: Option<f64>,
    /// Pieces play while they are made (`a` on the screen).
    pub play_while_made: Option<bool>,
    /// `built-in` or `soundfont`.
    pub voice: Option<String>,
    pub soundfont: Option<PathBuf>,
    pub checkpoint: Option<PathBuf>,
    pub data: Option<PathBuf>,
}

/// Writes a whole number as one (`tokens = 500`, not `500.0`); reading takes either.
fn number<S: serde::Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => s.serialize_some(&(*v as i64)),
        Some(v) => s.serialize_some(v),
        None => s.serialize_none(),
    }
}

const KNOWN_KEYS: [&str; 17] = [
    "temperature",
    "tokens",
    "top_k",
    "top_p",
    "bpm",
    "volume",
    "bars",
    "takes",
    "play_while_made",
    "scale",
    "range",
    "polyphony",
    "density",
    "voice",
    "soundfont",
    "checkpoint",
    "data",
];

/// The last piece made: its words, how many are prompt, and the title it continued.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastPiece {
    pub title: Option<String>,
    pub prompt_len: usize,
    /// The words as text (`START n60 d4 ... END`).
    pub words: String,
}

impl LastPiece {
    pub fn new(words: &[Word], prompt_len: usize, title: Option<String>) -> LastPiece {
        LastPiece {
            title,
            prompt_len,
            words: words_to_string(words),
        }
    }

    /// The words, or `None` when the text does not read back whole.
    pub fn parsed(&self) -> Option<Vec<Word>> {
        let (words, bad) = parse_words(&self.words);
        (bad == 0 && words.first() == Some(&Word::Start) && self.prompt_len <= words.len())
            .then_some(words)
    }
}

/// Where the two files live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    pub settings: PathBuf,
    pub last_piece: PathBuf,
}

impl Store {
    /// `--config FILE` when given (the last piece then sits beside it), else the standard
    /// places; `None` where the system names no home folder.
    pub fn locate(config: Option<&Path>) -> Option<Store> {
        if let Some(file) = config {
            let dir = file.parent().unwrap_or(Path::new("."));
            return Some(Store {
                settings: file.to_path_buf(),
                last_piece: dir.join(LAST_PIECE_FILE),
            });
        }
        let dirs = directories::ProjectDirs::from("", "", "nanotune")?;
        Some(Store {
            settings: dirs.config_dir().join(SETTINGS_FILE),
            last_piece: dirs.data_dir().join(LAST_PIECE_FILE),
        })
    }

    /// Where the keymap is: `keys.toml` beside the settings file, which nanotune only reads.
    pub fn keys(&self) -> PathBuf {
        self.settings.with_file_name(KEYS_FILE)
    }

    /// The saved settings, and a line for the status bar when something was wrong with them.
    /// No file yet is not wrong: defaults, silently.
    pub fn load_settings(&self) -> (Settings, Option<String>) {
        let text = match std::fs::read_to_string(&self.settings) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return (Settings::default(), None)
            }
            Err(e) => return (Settings::default(), Some(self.unreadable(&e.to_string()))),
        };
        let table: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => return (Settings::default(), Some(self.unreadable(e.message()))),
        };
        let unknown: Vec<&str> = table
            .keys()
            .map(String::as_str)
            .filter(|k| !KNOWN_KEYS.contains(k))
            .collect();
        let known: toml::Table = table
            .iter()
            .filter(|(k, _)| KNOWN_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        match known.try_into::<Settings>() {
            Ok(s) if unknown.is_empty() => (s, None),
            Ok(s) => {
                let note = format!(
                    "{}: ignored unknown setting{} {}",
                    self.settings.display(),
                    if unknown.len() == 1 { "" } else { "s" },
                    unknown.join(", ")
                );
                (s, Some(note))
            }
            Err(e) => (Settings::default(), Some(self.unreadable(e.message()))),
        }
    }

    fn unreadable(&self, why: &str) -> String {
        let why = why.lines().next().unwrap_or("").trim();
        format!(
            "{} could not be read ({why}): default settings; it is replaced at the next change",
            self.settings.display()
        )
    }

    /// Writes the settings atomically, creating the folder if needed.
    pub fn save_settings(&self, s: &Settings) -> Result<()> {
        let text = toml::to_string(s).context("writing the settings as TOML")?;
        write_in_dir(&self.settings, text.as_bytes())
    }

    /// The last piece, if one was kept and reads back whole.
    pub fn load_last_piece(&self) -> Option<(LastPiece, Vec<Word>)> {
        let text = std::fs::read_to_string(&self.last_piece).ok()?;
        let piece: LastPiece = toml::from_str(&text).ok()?;
        let words = piece.parsed()?;
        Some((piece, words))
    }

    pub fn save_last_piece(&self, piece: &LastPiece) -> Result<()> {
        let text = toml::to_string(piece).context("writing the last piece as TOML")?;
        write_in_dir(&self.last_piece, text.as_bytes())
    }
}

fn write_in_dir(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    write_atomic(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> Store {
        Store::locate(Some(&dir.join("sub/settings.toml"))).unwrap()
    }

    #[test]
    fn settings_round_trip_and_a_missing_file_is_quietly_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let st = store(dir.path());
        assert_eq!(st.load_settings(), (Settings::default(), None));
        let s = Settings {
            temperature: Some(1.15),
            tokens: Some(800.0),
            scale: Some("F# minor".into()),
            checkpoint: Some("/models/base".into()),
            ..Settings::default()
        };
        st.save_settings(&s).unwrap();
        let text = std::fs::read_to_string(&st.settings).unwrap();
        assert!(
            text.contains("tokens = 800\n") && text.contains("temperature = 1.15\n"),
            "{text}"
        );
        assert_eq!(st.load_settings(), (s, None));
        assert_eq!(st.last_piece, dir.path().join("sub").join(LAST_PIECE_FILE));
    }

    #[test]
    fn damaged_files_give_defaults_and_one_line_and_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let st = store(dir.path());
        std::fs::create_dir_all(st.settings.parent().unwrap()).unwrap();
        for bad in [
            &b"temperature = = 3"[..],
            b"temperature = \"hot\"",
            b"\xff\xfe\x00garbage",
            b"[temperature]\nx = 1",
        ] {
            std::fs::write(&st.settings, bad).unwrap();
            let (s, note) = st.load_settings();
            assert_eq!(s, Settings::default());
            let note = note.expect("a damaged file is reported");
            assert!(
                note.contains("could not be read") && !note.contains('\n'),
                "{note}"
            );
            assert_eq!(std::fs::read(&st.settings).unwrap(), bad, "never deleted");
        }
    }

    #[test]
    fn unknown_keys_are_named_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let st = store(dir.path());
        std::fs::create_dir_all(st.settings.parent().unwrap()).unwrap();
        std::fs::write(&st.settings, "temperature = 0.5\ncolour = \"red\"\n").unwrap();
        let (s, note) = st.load_settings();
        assert_eq!(s.temperature, Some(0.5));
        assert!(note.unwrap().contains("unknown setting colour"));
    }

    #[test]
    fn the_last_piece_comes_back_and_a_bad_one_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let st = store(dir.path());
        assert!(st.load_last_piece().is_none());
        let (words, _) = parse_words("START n60 d4 sepxx d4 n64 d4 END");
        let piece = LastPiece::new(&words, 3, Some("Song".into()));
        st.save_last_piece(&piece).unwrap();
        assert_eq!(st.load_last_piece(), Some((piece, words)));
        std::fs::write(
            &st.last_piece,
            "words = \"n60 d4 banana\"\nprompt_len = 0\n",
        )
        .unwrap();
        assert!(st.load_last_piece().is_none());
    }
}
