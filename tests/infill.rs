//! Regenerating bars in place on the shipped model: over real pieces of the corpus, every note
//! before and after the span is the input's, note for note; the new notes lie inside the span;
//! the takes are ranked by the loss of the bars after; and `generate --infill` does the same
//! from a real MIDI file.

mod common;

use nanotune::music::words::{Vocab, Word};
use nanotune::sample::backend::{FastGpt, FastTakes, Weights};
use nanotune::sample::infill::{regenerate, Bars};
use nanotune::sample::SampleOptions;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;

fn shipped() -> FastTakes {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("checkpoints/small");
    FastTakes::new(FastGpt::load(&dir, Weights::default()).unwrap())
}

/// Asserts that `fill` keeps `piece` outside `bars` and puts its new notes inside them.
fn assert_in_place(piece: &[Word], fill: &[Word], bars: Bars) {
    let span = bars.steps();
    assert_eq!(
        common::notes_in(fill, 0..span.start),
        common::notes_in(piece, 0..span.start),
        "before"
    );
    assert_eq!(
        common::notes_in(fill, span.end..u64::MAX),
        common::notes_in(piece, span.end..u64::MAX),
        "after"
    );
    for n in common::notes_in(fill, span.clone()) {
        assert!(
            n.onset + n.duration as u64 <= span.end,
            "{n:?} sounds past {bars}"
        );
    }
    assert_eq!(nanotune::music::notes::canon(fill), fill, "not canonical");
}

#[test]
fn regenerated_bars_keep_every_other_note_of_real_pieces() {
    let Some(archive) = common::corpus_archive() else {
        return;
    };
    let data = common::corpus_slice(&archive, 60);
    let mut model = shipped();
    let bars = Bars { first: 5, last: 8 };
    let mut checked = 0;
    let mut differ = 0;
    for i in 0..data.train.pieces.len() {
        let (piece, _) = Vocab.decode(data.train.piece(i));
        // Pieces with music before, in and after the span.
        let spans = [0..64, 64..128, 128..192];
        if spans
            .iter()
            .any(|s| common::notes_in(&piece, s.clone()).is_empty())
        {
            continue;
        }
        let opts = SampleOptions {
            seed: i as u64,
            ..SampleOptions::default()
        };
        let fills =
            regenerate(&mut model, &piece, bars, &opts, 3, &AtomicBool::new(false)).unwrap();
        assert_eq!(fills.len(), 3);
        let losses: Vec<f64> = fills.iter().map(|f| f.following_loss.unwrap()).collect();
        assert!(
            losses.windows(2).all(|w| w[0] <= w[1]),
            "ranked: {losses:?}"
        );
        for fill in &fills {
            assert_in_place(&piece, &fill.words, bars);
        }
        differ += (common::notes_in(&fills[0].words, 64..128) != common::notes_in(&piece, 64..128))
            as usize;
        checked += 1;
        if checked == 12 {
            break;
        }
    }
    assert_eq!(checked, 12, "too few pieces with music in bars 1-12");
    assert!(differ >= 10, "only {differ} of 12 fills are new music");
}

#[test]
fn a_span_past_the_piece_or_backwards_is_refused_in_one_line() {
    assert!("8-5".parse::<Bars>().unwrap_err().contains("backwards"));
    assert!("0-3".parse::<Bars>().unwrap_err().contains("count from 1"));
    assert_eq!("7".parse::<Bars>().unwrap(), Bars { first: 7, last: 7 });
    let piece = nanotune::music::words::parse_words("START n60 d16 sepxx d16 n62 d16 END").0;
    let fill = |first, last, takes| {
        let stop = AtomicBool::new(false);
        let opts = SampleOptions::default();
        regenerate(
            &mut shipped(),
            &piece,
            Bars { first, last },
            &opts,
            takes,
            &stop,
        )
    };
    let err = fill(3, 4, 1).unwrap_err();
    assert!(err.to_string().contains("lasts 2 bars"), "{err}");
    // Bars 2 to 4 of a two-bar piece: it grows, and bar 1 stays.
    let fills = fill(2, 4, 2).unwrap();
    for fill in fills {
        assert_in_place(&piece, &fill.words, Bars { first: 2, last: 4 });
        assert_eq!(fill.following_loss, None);
    }
}

#[test]
fn generate_infill_rewrites_bars_of_a_real_midi_file() {
    let Some(file) = common::piano_piece() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fill.mid");
    let run = Command::new(env!("CARGO_BIN_EXE_nanotune"))
        .args(["generate", "--infill"])
        .arg(&file)
        .args([
            "--bars", "5-8", "--takes", "2", "--seed", "4", "--device", "cpu", "-o",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(said.contains("regenerating bars 5-8"), "{said}");
    assert!(said.contains("nats/word on the bars after"), "{said}");
    let original = nanotune::music::read::read_file(&file).unwrap();
    for k in 1..=2 {
        let fill = nanotune::music::read::read_file(&tmp.path().join(format!("fill-{k}.mid")));
        assert_in_place(&original, &fill.unwrap(), Bars { first: 5, last: 8 });
    }
    let refused = Command::new(env!("CARGO_BIN_EXE_nanotune"))
        .args(["generate", "--bars", "5-8", "--device", "cpu"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("give --infill FILE"), "{err}");
}
