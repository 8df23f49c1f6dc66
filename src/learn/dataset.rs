//! The prepared dataset: token ids per split, with an index of pieces, so training never
//! re-parses text.
//!
//! On disk (a folder): `train.bin`, `val.bin`, `test.bin` hold little-endian `u16` token ids, the
//! pieces of a split one after another, each `START` ... `END`; `index.json` holds the vocabulary,
//! each piece's title, offset and length, and the report of `prepare`.

use crate::fsutil::write_atomic;
use crate::music::words::Vocab;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Which part of the data a piece belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }

    /// The split of a piece, from its title alone: 64-bit FNV-1a of the UTF-8 bytes, `% 20`:
    /// 0 is validation, 1 is test, the rest training. Stable across versions and machines.
    pub fn of_title(title: &str) -> Split {
        match fnv1a64(title.as_bytes()) % 20 {
            0 => Split::Val,
            1 => Split::Test,
            _ => Split::Train,
        }
    }
}

impl std::str::FromStr for Split {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Split> {
        Split::ALL
            .into_iter()
            .find(|split| split.name() == s)
            .with_context(|| format!("unknown split '{s}' (expected train, val or test)"))
    }
}

/// 64-bit FNV-1a.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Where one piece lies in its split's token array.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceSpan {
    pub title: String,
    pub offset: usize,
    pub len: usize,
}

/// The token ids of one split and where each piece lies in them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SplitData {
    pub tokens: Vec<u16>,
    pub pieces: Vec<PieceSpan>,
}

impl SplitData {
    /// Appends one piece (token ids, `START` ... `END`).
    pub fn push(&mut self, title: &str, ids: &[u16]) {
        self.pieces.push(PieceSpan {
            title: title.to_string(),
            offset: self.tokens.len(),
            len: ids.len(),
        });
        self.tokens.extend_from_slice(ids);
    }

    /// The token ids of one piece.
    pub fn piece(&self, index: usize) -> &[u16] {
        let span = &self.pieces[index];
        &self.tokens[span.offset..span.offset + span.len]
    }

    /// The index of the piece with this title, if any.
    pub fn find(&self, title: &str) -> Option<usize> {
        self.pieces.iter().position(|p| p.title == title)
    }
}

/// A prepared dataset: three splits plus what `prepare` reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dataset {
    pub train: SplitData,
    pub val: SplitData,
    pub test: SplitData,
    /// Free-form report of how the dataset was made (counts of pieces, skips and drops).
    pub report: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct SplitIndex {
    words: usize,
    pieces: Vec<(String, usize, usize)>,
}

#[derive(Serialize, Deserialize)]
struct Index {
    format: String,
    version: u32,
    vocab: Vec<String>,
    train: SplitIndex,
    val: SplitIndex,
    test: SplitIndex,
    report: serde_json::Value,
}

const FORMAT: &str = "nanotune-dataset";
const VERSION: u32 = 1;

impl Dataset {
    pub fn split(&self, split: Split) -> &SplitData {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
            Split::Test => &self.test,
        }
    }

    pub fn split_mut(&mut self, split: Split) -> &mut SplitData {
        match split {
            Split::Train => &mut self.train,
            Split::Val => &mut self.val,
            Split::Test => &mut self.test,
        }
    }

    /// The first `words` token ids of every validation piece, and nothing else: the small file
    /// shipped beside a model, so "Continue song" works without the full dataset. Prompts are cut
    /// back to a whole note when used (`sample::prompt::head`), so the cut here may split a note.
    pub fn openings(&self, words: usize) -> Dataset {
        let mut val = SplitData::default();
        for (index, span) in self.val.pieces.iter().enumerate() {
            let ids = self.val.piece(index);
            val.push(&span.title, &ids[..ids.len().min(words)]);
        }
        Dataset {
            val,
            report: serde_json::json!({
                "openings": {"words_per_piece": words, "pieces": self.val.pieces.len()},
                "source": self.report,
            }),
            ..Dataset::default()
        }
    }

    /// Writes the dataset into `dir` (created if needed). Each file is written atomically, the
    /// index last, so a reader never sees an index that points past its arrays.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for split in Split::ALL {
            let data = self.split(split);
            let bytes: Vec<u8> = data.tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
            write_atomic(&dir.join(format!("{}.bin", split.name())), &bytes)?;
        }
        let index_of = |data: &SplitData| SplitIndex {
            words: data.tokens.len(),
            pieces: data
                .pieces
                .iter()
                .map(|p| (p.title.clone(), p.offset, p.len))
                .collect(),
        };
        let index = Index {
            format: FORMAT.into(),
            version: VERSION,
            vocab: Vocab.words(),
            train: index_of(&self.train),
            val: index_of(&self.val),
            test: index_of(&self.test),
            report: self.report.clone(),
        };
        write_atomic(&dir.join("index.json"), &serde_json::to_vec(&index)?)
    }

    /// Reads a dataset written by [`Dataset::save`], checking that it is whole and that its
    /// vocabulary is ours.
    pub fn load(dir: &Path) -> Result<Dataset> {
        let index_path = dir.join("index.json");
        let text = std::fs::read(&index_path).with_context(|| {
            format!(
                "no prepared dataset in {} (run `nanotune prepare SOURCE -o {}` first)",
                dir.display(),
                dir.display()
            )
        })?;
        let index: Index = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a dataset index", index_path.display()))?;
        if index.format != FORMAT || index.version != VERSION {
            bail!(
                "{} is format {} v{}, this nanotune reads {FORMAT} v{VERSION}",
                index_path.display(),
                index.format,
                index.version
            );
        }
        if index.vocab != Vocab.words() {
            bail!("{} was made with another vocabulary", index_path.display());
        }
        let mut dataset = Dataset {
            report: index.report,
            ..Dataset::default()
        };
        for (split, split_index) in [
            (Split::Train, index.train),
            (Split::Val, index.val),
            (Split::Test, index.test),
        ] {
            let path = dir.join(format!("{}.bin", split.name()));
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            if bytes.len() != split_index.words * 2 {
                bail!(
                    "{} holds {} bytes, the index expects {} words: the dataset is damaged",
                    path.display(),
                    bytes.len(),
                    split_index.words
                );
            }
            let tokens: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .collect();
            if let Some(bad) = tokens.iter().find(|&&t| t as usize >= Vocab.len()) {
                bail!(
                    "{} holds token id {bad}, outside the vocabulary",
                    path.display()
                );
            }
            let mut pieces = Vec::with_capacity(split_index.pieces.len());
            for (title, offset, len) in split_index.pieces {
                if offset.checked_add(len).is_none_or(|end| end > tokens.len()) {
                    bail!(
                        "{}: piece '{title}' lies outside the token array",
                        index_path.display()
                    );
                }
                pieces.push(PieceSpan { title, offset, len });
            }
            *dataset.split_mut(split) = SplitData { tokens, pieces };
        }
        Ok(dataset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_reference_values() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn openings_keep_the_start_of_each_validation_piece_only() {
        let mut ds = Dataset::default();
        ds.train.push("t", &[0, 3, 91, 1]);
        ds.val.push("long", &[0, 3, 91, 5, 92, 1]);
        ds.val.push("short", &[0, 1]);
        let o = ds.openings(4);
        assert!(o.train.pieces.is_empty() && o.test.pieces.is_empty());
        assert_eq!(o.val.pieces.len(), 2);
        assert_eq!(o.val.piece(0), &[0, 3, 91, 5]);
        assert_eq!(o.val.piece(1), &[0, 1]);
        assert_eq!(o.val.find("short"), Some(1));
    }

    #[test]
    fn save_and_load_round_trip_and_damage_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let mut ds = Dataset::default();
        ds.train.push("a", &[0, 3, 91, 1]);
        ds.val.push("b", &[0, 1]);
        ds.report = serde_json::json!({"pieces": 2});
        ds.save(dir.path()).unwrap();
        let back = Dataset::load(dir.path()).unwrap();
        assert_eq!(back, ds);
        assert_eq!(back.train.piece(0), &[0, 3, 91, 1]);

        std::fs::write(dir.path().join("train.bin"), [0u8; 3]).unwrap();
        let err = Dataset::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("damaged"), "{err}");
        let err = Dataset::load(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("nanotune prepare"), "{err}");
    }
}
