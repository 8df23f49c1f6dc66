//! `nanotune bench answer`: how long after a phrase ends on the laptop its answer is there. The
//! screen's own loop (its runtime and update, as `run` drives them, on the checkpoint) answers
//! phrases from a listener: one in this process hearing a real file's bars as its keyboard, or a
//! running one (`--listener`, e.g. through `ssh -R`, started with `--midi-in-file`). The listener
//! times each answer on its own clock, from sending the phrase (the gap of silence that ends it
//! already past) to the answer arriving, so the figure holds both ways across the link.

use super::quantile;
use crate::learn::checkpoint::locate;
use crate::learn::device::Compute;
use crate::music::midi::read_midi;
use crate::music::notes::{Note, STEPS_PER_BAR};
use crate::sample::backend::{load_for, Weights};
use crate::sound::listen::keys::{KeySettings, KeySource};
use crate::sound::listen::{Address, Client, Listener};
use crate::sound::output::Output;
use crate::sound::piece::Piece;
use crate::sound::playback::SilentPlayback;
use crate::tui::app::{update, Action, App, ControlId, Environment, Focus, GenState, Message};
use crate::tui::run::deliver;
use crate::tui::runtime::{Options, Runtime};
use anyhow::{bail, Context, Result};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The bench's settings.
pub struct AnswerBench<'a> {
    pub phrases: usize,
    /// Words of each answer (the screen's Tokens).
    pub words: usize,
    pub bpm: f64,
    pub checkpoint: Option<&'a Path>,
    pub listener: Option<&'a str>,
    /// The real MIDI file whose bars the in-process listener plays as phrases.
    pub file: &'a Path,
    /// Each answer goes once it is whole, instead of as it is made.
    pub once_whole: bool,
}

pub fn bench_answer(b: &AnswerBench) -> Result<()> {
    let dir = locate(b.checkpoint)?;
    let (model, label) = load_for(&dir, &Compute::cpu(), Weights::default())?;
    // The in-process listener's socket and phrase file, removed at the end.
    let folder = std::env::temp_dir().join(format!("nanotune-bench-answer-{}", std::process::id()));
    // In this process: a listener hearing two-bar phrases of the file, two bars apart.
    let (client, serving, where_) = match b.listener {
        Some(address) => {
            let client = Client::connect(&Address::parse(address)?)
                .with_context(|| format!("no listener answers at {address}"))?;
            (client, None, format!("the listener at {address}"))
        }
        None => {
            let (played, held) = phrases(b.file, b.phrases)?;
            if held < b.phrases {
                bail!(
                    "{} holds {held} two-bar phrases with music, not {}: ask for fewer",
                    b.file.display(),
                    b.phrases
                );
            }
            std::fs::create_dir_all(&folder)?;
            let phrases = folder.join("phrases.mid");
            std::fs::write(
                &phrases,
                Piece::from_grid("phrases", &played, 120.0).to_midi_file()?,
            )?;
            let socket = folder.join("bench.sock");
            let serving = Listener::bind(Some(&socket), None)?
                .with_keys(KeySettings {
                    source: KeySource::File(phrases),
                    gap_beats: 2.0,
                    max_bars: None,
                    count_in: false,
                })
                .serve(
                    Box::new(SilentPlayback::new("bench")),
                    None,
                    Arc::new(|_: &str| {}),
                );
            let client = Client::connect(&Address::Unix(socket))?;
            (
                client,
                Some(serving),
                "a listener in this process (Unix socket)".into(),
            )
        }
    };
    let mut runtime = Runtime::new(
        Some(model),
        Output::Listener(client),
        None,
        Options::default(),
    );
    let mut app = App::new(
        Environment {
            device: "cpu".into(),
            ..Environment::default()
        },
        1,
    );
    app.play_while_made = !b.once_whole;
    app.controls[ControlId::Bpm].value = b.bpm;
    app.controls[ControlId::Tokens].value = b.words as f64;
    app.focus = Focus::Menu;
    app.selected_action = Action::ALL
        .iter()
        .position(|&a| a == Action::Answer)
        .expect("the menu has it");
    let enter = KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE);
    for effect in update(&mut app, Message::Key(enter)) {
        let messages = runtime.carry_out(effect);
        deliver(&mut app, &mut runtime, messages);
    }
    let sent = if b.once_whole {
        "each sent once whole"
    } else {
        "each played as it is made"
    };
    println!(
        "answer latency: {} phrases, {}-word answers at {} bpm, {sent}, {label}; {where_}",
        b.phrases, b.words, b.bpm
    );
    let mut latencies = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60 + b.phrases as u64 * 30);
    while latencies.len() < b.phrases {
        if Instant::now() > deadline {
            bail!("only {} answers arrived in time", latencies.len());
        }
        if !app.answering.on {
            bail!(
                "the screen stopped answering: {}",
                app.toast.clone().unwrap_or_default()
            );
        }
        let messages = runtime.poll(app.playing.is_some());
        deliver(&mut app, &mut runtime, messages);
        let arrived = runtime.listener().and_then(|c| c.take_answer_time());
        if let Some(after) = arrived {
            let made = match app.gen {
                GenState::Complete { took, .. } => {
                    format!("made in {:.0} ms", took.as_secs_f64() * 1e3)
                }
                _ => "made so far".into(),
            };
            println!(
                "phrase {}: {} words {made}; the answer began at the listener {:.0} ms after it \
                 sent the phrase",
                latencies.len() + 1,
                app.piece().words.len() - app.piece().prompt_len,
                after.as_secs_f64() * 1e3
            );
            latencies.push(after.as_secs_f64() * 1e3);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "median {:.0} ms, p95 {:.0} ms from the phrase's end (after its gap of silence) to its \
         answer beginning at the listener (goal 250 ms plus the link's round trip)",
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.95)
    );
    drop(runtime);
    drop(serving);
    let _ = std::fs::remove_dir_all(&folder);
    Ok(())
}

/// `phrases` two-bar phrases of the MIDI file `from` (its bars 1-2, 5-6, ... from its first
/// bar with music), two bars apart, from step 0; and how many of them hold notes.
fn phrases(from: &Path, phrases: usize) -> Result<(Vec<Note>, usize)> {
    let bytes = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    let mut notes = read_midi(&bytes)?.grid_notes();
    crate::music::notes::canonicalise(&mut notes);
    let Some(first) = notes
        .first()
        .map(|n| n.onset / STEPS_PER_BAR * STEPS_PER_BAR)
    else {
        bail!("{} holds no notes", from.display());
    };
    let played: Vec<Note> = notes
        .iter()
        .filter(|n| {
            let bar = (n.onset - first) / STEPS_PER_BAR;
            bar % 4 < 2 && bar < 4 * phrases as u64
        })
        .map(|n| Note {
            onset: n.onset - first,
            ..*n
        })
        .collect();
    let held = played
        .iter()
        .map(|n| n.onset / (4 * STEPS_PER_BAR))
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    Ok((played, held))
}
