//! The model that ships in `checkpoints/` loads and makes music on the CPU, as a fresh clone's
//! first run does.

use nanotune::checkpoint::{find_in, Checkpoint};
use nanotune::notes::{canon, from_words};
use nanotune::sample::backend::{FastGpt, Weights};
use nanotune::sample::{generate, prompt, SampleOptions};
use std::path::Path;
use std::sync::atomic::AtomicBool;

#[test]
fn shipped_checkpoint_loads_and_generates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("checkpoints");
    let dir = find_in(&root).expect("a model ships in checkpoints/");
    let checkpoint = Checkpoint::load(&dir, &candle_core::Device::Cpu).unwrap();
    assert!(checkpoint.model.num_params() > 1_000_000);
    let mut model = FastGpt::load(&dir, Weights::default()).unwrap();
    let opts = SampleOptions {
        words: 300,
        seed: 1,
        ..SampleOptions::default()
    };
    let g = generate(
        &mut model,
        &prompt::new_piece(),
        &opts,
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(canon(&g.words), g.words, "the piece is canonical");
    let decoded = from_words(&g.words);
    assert_eq!(decoded.skipped, 0);
    // A trained model writes music, not a handful of notes: at least one note per 4 words.
    assert!(
        decoded.notes.len() * 4 >= g.words.len(),
        "{} notes",
        decoded.notes.len()
    );
}
