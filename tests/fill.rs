//! Fill in the middle: `train --fill-share` gives a model the three fill markers (grown on a
//! model without them, refused on a resume) and trains on laid-out windows of real pieces; a
//! model with the markers regenerates bars reading the bars on both sides first, and keeps
//! every note outside the span.

mod common;

use candle_core::Device;
use nanotune::learn::checkpoint::Checkpoint;
use nanotune::learn::model::TOKEN_TABLE;
use nanotune::music::notes::{from_words, Note};
use nanotune::music::read::piece_from_midi;
use nanotune::music::words::{Vocab, Word};
use nanotune::sample::infill::{method, regenerate, Bars};
use nanotune::sample::{NextWordModel, SampleOptions};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;

/// A model that answers every word with the same seeded noise and remembers what it read.
struct Spy {
    outputs: usize,
    takes: usize,
    /// Every id fed since the last reset, per take.
    read: Vec<Vec<u16>>,
    /// The first batch fed after a reset, take 0's part.
    first_feed: Vec<Vec<u16>>,
}

impl Spy {
    fn new(outputs: usize) -> Spy {
        Spy {
            outputs,
            takes: 1,
            read: vec![Vec::new()],
            first_feed: Vec::new(),
        }
    }
}

impl NextWordModel for Spy {
    fn context(&self) -> usize {
        512
    }
    fn vocab(&self) -> usize {
        self.outputs
    }
    fn takes(&self) -> usize {
        self.takes
    }
    fn set_takes(&mut self, takes: usize) -> anyhow::Result<()> {
        self.takes = takes;
        self.read = vec![Vec::new(); takes];
        Ok(())
    }
    fn reset(&mut self) {
        self.read.iter_mut().for_each(Vec::clear);
    }
    fn feed(&mut self, ids: &[&[u16]], logits: &mut [f32]) -> anyhow::Result<()> {
        if self.read.iter().all(Vec::is_empty) {
            self.first_feed.push(ids[0].to_vec());
        }
        for (k, ids) in ids.iter().enumerate() {
            self.read[k].extend_from_slice(ids);
            let n = self.read[k].len() as u32;
            for (i, l) in logits[k * self.outputs..][..self.outputs]
                .iter_mut()
                .enumerate()
            {
                // Noise that changes with the position, so takes wander.
                let h = (i as u32 ^ n.wrapping_mul(2_654_435_761)).wrapping_mul(2_246_822_519);
                *l = (h >> 8) as f32 / (1 << 24) as f32 * 4.0;
            }
        }
        Ok(())
    }
}

fn example_piece() -> Vec<Word> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/continuation.mid");
    piece_from_midi(&std::fs::read(path).unwrap(), &mut Default::default()).unwrap()
}

#[test]
fn a_model_with_the_markers_reads_both_sides_before_it_fills() {
    let piece = example_piece();
    let bars = Bars { first: 3, last: 4 };
    let span = bars.steps();
    let opts = SampleOptions {
        seed: 9,
        ..SampleOptions::default()
    };
    for outputs in [Vocab.len(), Vocab::WITH_FILL] {
        let mut spy = Spy::new(outputs);
        let fills = regenerate(&mut spy, &piece, bars, &opts, 2, &AtomicBool::new(false)).unwrap();
        assert_eq!(fills.len(), 2);
        for fill in &fills {
            assert_eq!(
                common::notes_in(&fill.words, 0..span.start),
                common::notes_in(&piece, 0..span.start)
            );
            assert_eq!(
                common::notes_in(&fill.words, span.end..u64::MAX),
                common::notes_in(&piece, span.end..u64::MAX)
            );
            for n in common::notes_in(&fill.words, span.clone()) {
                assert!(n.onset + n.duration as u64 <= span.end, "{n:?}");
            }
        }
        let lead = &spy.first_feed[0];
        let markers: Vec<u16> = lead
            .iter()
            .copied()
            .filter(|&t| t >= Vocab::FILL_PRE)
            .collect();
        if outputs == Vocab.len() {
            assert!(markers.is_empty(), "{markers:?}");
            assert_eq!(method(outputs), "left to right, ranked");
            continue;
        }
        assert_eq!(method(outputs), "fill in the middle, ranked");
        assert_eq!(markers, [Vocab::FILL_PRE, Vocab::FILL_SUF, Vocab::FILL_MID]);
        assert_eq!(lead[0], Vocab::FILL_PRE);
        assert_eq!(lead.last(), Some(&Vocab::FILL_MID));
        // The suffix is the piece from bar 5 on, its times from bar 3's start.
        let at = |id| lead.iter().position(|&t| t == id).unwrap();
        let suffix = Vocab
            .decode(&lead[at(Vocab::FILL_SUF) + 1..at(Vocab::FILL_MID)])
            .0;
        let moved: Vec<Note> = common::notes_in(&suffix, 0..u64::MAX)
            .into_iter()
            .map(|n| Note {
                onset: n.onset + span.start,
                ..n
            })
            .collect();
        let after = common::notes_in(&piece, span.end..u64::MAX);
        assert!(!moved.is_empty());
        assert_eq!(moved[..], after[..moved.len()]);
        // The prefix ends at bar 3's start.
        let prefix = Vocab.decode(&lead[1..at(Vocab::FILL_SUF)]).0;
        assert_eq!(prefix[0], Word::Start);
        assert_eq!(
            from_words(&prefix).notes,
            common::notes_in(&piece, 0..span.start)
        );
    }
}

#[test]
fn fill_training_grows_the_markers_and_lowers_the_loss_on_real_pieces() {
    let Some((tmp, data)) = common::corpus_dataset(40) else {
        return;
    };
    let bin = env!("CARGO_BIN_EXE_nanotune");
    let train = |out: &Path, extra: &[&str]| {
        let tiny = "--layers 1 --heads 2 --width 32 --context 128 --batch 8 --eval-every 10 \
                    --eval-batches 1 --lr 3e-3 -q";
        let o = Command::new(bin)
            .args([
                "train",
                "--data",
                data.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .args(tiny.split_whitespace())
            .args(extra)
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let plain = tmp.path().join("plain");
    let (ok, err) = train(&plain, &["--steps", "10"]);
    assert!(ok, "{err}");
    // Resuming a model without the markers with them is refused, with the way out.
    let (ok, err) = train(
        &plain,
        &["--steps", "20", "--resume", "--fill-share", "0.5"],
    );
    assert!(!ok && err.contains("--init-from"), "{err}");

    let filled = tmp.path().join("filled");
    let (ok, err) = train(
        &filled,
        &[
            "--steps",
            "60",
            "--fill-share",
            "1",
            "--init-from",
            plain.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let before = Checkpoint::load(&plain, &Device::Cpu).unwrap();
    let after = Checkpoint::load(&filled, &Device::Cpu).unwrap();
    assert_eq!(after.config.model.vocab, Vocab::WITH_FILL);
    assert_eq!(
        after.config.vocab[Vocab::FILL_PRE as usize..],
        ["FILL_PRE", "FILL_SUF", "FILL_MID"]
    );
    let rows = |c: &Checkpoint| c.model.tensors()[TOKEN_TABLE].dims().to_vec();
    assert_eq!(rows(&before), [Vocab.len(), 32]);
    assert_eq!(rows(&after), [Vocab::WITH_FILL, 32]);
    // Trained on laid-out windows only (share 1), it still learns the pieces' music: the
    // plain val loss the run logs falls.
    let val = common::logged_val_losses(&filled);
    let (first, last) = (val[0], *val.last().unwrap());
    assert!(last < first - 0.1, "{val:?}");
}
