//! Length in bars: the new part fills N bars of 4/4 after the bar the prompt ends in, and the
//! piece ends at that bar line, on the shipped model, from a new piece and from a real prompt.

use nanotune::learn::device::{Compute, DeviceChoice};
use nanotune::music::notes::{canon, end_step, from_words};
use nanotune::music::words::Word;
use nanotune::sample::backend::{load_for, BoxedModel, Weights};
use nanotune::sample::{generate, prompt, Generation, SampleOptions};
use std::path::Path;
use std::sync::atomic::AtomicBool;

const BAR: u64 = 16;

fn shipped() -> BoxedModel {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("checkpoints/small");
    let compute = Compute::select(DeviceChoice::Cpu).unwrap();
    load_for(&dir, &compute, Weights::default()).unwrap().0
}

fn run(
    model: &mut BoxedModel,
    p: &nanotune::music::words::Titled,
    bars: u32,
    seed: u64,
) -> Generation {
    let o = SampleOptions {
        bars: Some(bars),
        // A word count that would end far sooner or later: bars mode must ignore it.
        words: 50,
        seed,
        ..SampleOptions::default()
    };
    generate(model, p, &o, &AtomicBool::new(false), &mut |_| {}).unwrap()
}

fn end_of(words: &[Word]) -> u64 {
    end_step(&from_words(words).notes)
}

#[test]
fn new_pieces_fill_their_bars_and_end_at_the_bar_line() {
    let mut model = shipped();
    let mut exact = 0;
    let mut total = 0;
    for bars in [1, 2, 4, 8, 24] {
        for seed in 0..3 {
            let g = run(&mut model, &prompt::new_piece(), bars, seed);
            assert_eq!(canon(&g.words), g.words, "not canonical");
            assert_eq!(g.words.last(), Some(&Word::End));
            let line = bars as u64 * BAR;
            let end = end_of(&g.words);
            // Nothing sounds past the line, and the last bar is played in.
            assert!(
                end <= line && end > line - BAR,
                "{bars} bars, seed {seed}: ends at {end}"
            );
            exact += usize::from(end == line);
            total += 1;
        }
    }
    // Most pieces hold a note up to the line itself (26 of 30 at 4 bars, seeds 1-30); the others
    // end a sixteenth or two before it, with the shift onto the line dropped.
    assert!(
        exact * 5 >= total * 3,
        "{exact} of {total} end exactly at the line"
    );
}

#[test]
fn a_continuation_adds_its_bars_after_the_prompts_bar() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/continuation.mid");
    let p = prompt::continue_file(&file, 150).unwrap();
    let prompt_end = end_of(&p.words);
    let mut model = shipped();
    for seed in 0..3 {
        let g = run(&mut model, &p, 4, seed);
        assert_eq!(g.prompt(), &p.words[..]);
        let line = prompt_end.div_ceil(BAR) * BAR + 4 * BAR;
        let end = end_of(&g.words);
        assert!(
            end <= line && end > line - BAR,
            "seed {seed}: {end} against {line}"
        );
    }
}

#[test]
fn zero_bars_is_refused() {
    let mut model = shipped();
    let o = SampleOptions {
        bars: Some(0),
        ..SampleOptions::default()
    };
    let e = generate(
        &mut model,
        &prompt::new_piece(),
        &o,
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(e.to_string().contains("bars"), "{e}");
}
