//! The TUI's runtime: finds the model, the dataset and the sound card before the screen opens,
//! then runs the event loop, carrying out the [`Effect`]s of `update` (generation on a thread,
//! playback, saving) and feeding their results back as [`Message`]s. The terminal is restored on
//! every exit path, panics included.

use super::app::{update, App, Effect, Environment, Message, Prompt, Settings};
use super::view::view;
use crate::learn::checkpoint::locate;
use crate::learn::dataset::{Dataset, SplitData};
use crate::learn::device::{Compute, DeviceChoice};
use crate::music::midi::write_midi;
use crate::music::notes::from_words;
use crate::music::words::Word;
use crate::sample::backend::{load_for, BoxedModel, Weights};
use crate::sample::{self, prompt, Running, SampleOptions};
use crate::sound::audio::{self, Player};
use crate::sound::synth::{self, Format, WavEncoding};
use anyhow::{Context, Result};
use crossterm::event::{self, Event, KeyEventKind};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::ExecutableCommand;
use rand::rngs::StdRng;
use rand::SeedableRng;
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use std::io::Stdout;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What `nanotune` with no subcommand was given.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub checkpoint: Option<PathBuf>,
    pub data: Option<PathBuf>,
    /// Words of a piece used as the Continue prompt, cut back to a whole note (0 = the whole
    /// piece, as in [`prompt::head`]).
    pub prompt_words: usize,
    pub device: DeviceChoice,
}

/// Loads the model [`locate`] finds, or says why there is none.
fn load_model(given: Option<&Path>, compute: &Compute) -> std::result::Result<BoxedModel, String> {
    let dir = locate(given).map_err(|e| format!("{e:#}"))?;
    load_for(&dir, compute, Weights::default())
        .map(|(m, _)| m)
        .map_err(|e| format!("could not load the model in {}: {e:#}", dir.display()))
}

fn load_validation(given: Option<&Path>) -> std::result::Result<SplitData, String> {
    let dir = given.map_or_else(|| PathBuf::from("data/prepared"), Path::to_path_buf);
    match Dataset::load(&dir) {
        Ok(ds) if !ds.val.pieces.is_empty() => Ok(ds.val),
        Ok(_) => Err(format!("the dataset in {} has no validation pieces", dir.display())),
        Err(_) => Err(format!(
            "Continue song needs a prepared dataset in {} (nanotune prepare SOURCE -o {}, or --data DIR)",
            dir.display(),
            dir.display()
        )),
    }
}

type Term = Terminal<CrosstermBackend<Stdout>>;

fn restore_terminal() {
    let _ = terminal::disable_raw_mode();
    let _ = std::io::stdout().execute(LeaveAlternateScreen);
    let _ = std::io::stdout().execute(crossterm::cursor::Show);
}

/// Runs the TUI until the user quits.
pub fn run(options: Options) -> Result<()> {
    // Everything that may print (ALSA's complaints included) happens before the screen opens.
    let audio_status = audio::probe();
    let mut player = if audio_status.is_available() {
        Player::new().ok()
    } else {
        None
    };
    // An explicit --device that cannot be had stops here, before the screen opens.
    let compute = Compute::select(options.device)?;
    let (mut model, model_error) = match load_model(options.checkpoint.as_deref(), &compute) {
        Ok(m) => (Some(m), None),
        Err(e) => (None, Some(e)),
    };
    let (validation, dataset_error) = match load_validation(options.data.as_deref()) {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    };
    let env = Environment {
        model_error,
        dataset_error,
        audio_error: player.is_none().then(|| audio_status.to_string()),
        device: compute.name(),
    };
    let mut app = App::new(env, sample::random_seed());
    if let Some(p) = &player {
        p.set_volume(app.value(super::app::ctl::VOLUME) as f32 / 100.0);
    }

    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous_hook(info);
    }));
    terminal::enable_raw_mode().context("this needs an interactive terminal")?;
    std::io::stdout().execute(EnterAlternateScreen)?;
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    let result = event_loop(
        &mut term,
        &mut app,
        &mut model,
        &mut player,
        validation.as_ref(),
        &options,
    );
    restore_terminal();
    result
}

/// A generation in flight and when it started.
struct InFlight {
    running: Running<BoxedModel>,
    started: Instant,
}

fn event_loop(
    term: &mut Term,
    app: &mut App,
    model: &mut Option<BoxedModel>,
    player: &mut Option<Player>,
    validation: Option<&SplitData>,
    options: &Options,
) -> Result<()> {
    let mut in_flight: Option<InFlight> = None;
    let mut saved = 0usize;
    while !app.quit {
        term.draw(|f| view(app, f))?;
        let mut messages = Vec::new();
        if event::poll(Duration::from_millis(30))? {
            // Take every queued event before drawing again, so typing never waits on a frame.
            loop {
                if let Event::Key(k) = event::read()? {
                    if k.kind != KeyEventKind::Release {
                        messages.push(Message::Key(k));
                    }
                }
                if !event::poll(Duration::ZERO)? {
                    break;
                }
            }
        }
        if let Some(flight) = &in_flight {
            messages.extend(flight.running.words.try_iter().map(Message::Word));
            messages.push(Message::Tick(flight.started.elapsed()));
            if flight.running.is_finished() {
                let flight = in_flight.take().expect("checked");
                // Words sent before the thread ended are still queued: take them first.
                messages.extend(flight.running.words.try_iter().map(Message::Word));
                let (back, result) = flight.running.join();
                *model = Some(back);
                messages.push(match result {
                    Ok(g) => Message::Finished {
                        cancelled: g.ended == sample::Ended::Cancelled,
                        elapsed: g.elapsed,
                        error: None,
                        words: Some(g.words),
                    },
                    Err(e) => Message::Finished {
                        cancelled: false,
                        elapsed: flight.started.elapsed(),
                        error: Some(format!("{e:#}")),
                        words: None,
                    },
                });
            }
        }
        if let (Some(p), Some(_)) = (player.as_ref(), app.playing) {
            messages.push(Message::PlayPosition(
                p.is_playing().then(|| p.position_seconds()),
            ));
        }
        for msg in messages {
            for effect in update(app, msg) {
                let feedback = carry_out(
                    effect,
                    app,
                    model,
                    player,
                    validation,
                    options,
                    &mut in_flight,
                    &mut saved,
                );
                for m in feedback {
                    update(app, m);
                }
            }
        }
    }
    if let Some(flight) = in_flight.take() {
        flight.running.stop();
        let _ = flight.running.join();
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn carry_out(
    effect: Effect,
    app: &App,
    model: &mut Option<BoxedModel>,
    player: &mut Option<Player>,
    validation: Option<&SplitData>,
    options: &Options,
    in_flight: &mut Option<InFlight>,
    saved: &mut usize,
) -> Vec<Message> {
    match effect {
        Effect::Generate { prompt, settings } => {
            let Some(m) = model.take() else {
                return vec![failed("no model is loaded")];
            };
            match build_prompt(prompt, &settings, validation, options) {
                Ok(p) => {
                    let started = vec![Message::Started {
                        prompt: p.words.clone(),
                        title: p.title.clone(),
                    }];
                    let running = sample::spawn(m, p, sample_options(&settings));
                    *in_flight = Some(InFlight {
                        running,
                        started: Instant::now(),
                    });
                    started
                }
                Err(e) => {
                    *model = Some(m);
                    vec![failed(&format!("{e:#}"))]
                }
            }
        }
        Effect::Cancel => {
            if let Some(f) = in_flight {
                f.running.stop();
            }
            Vec::new()
        }
        Effect::Play { words, bpm, volume } => {
            let notes = synth::from_grid(&from_words(&words).notes, bpm);
            match player {
                Some(p) => {
                    p.set_volume(volume);
                    p.play(&notes);
                    Vec::new()
                }
                None => {
                    let path = next_name(saved, "wav");
                    let done = synth::render_wav_file(
                        &path,
                        &notes,
                        Format::STEREO_44K,
                        WavEncoding::Pcm16,
                    );
                    vec![
                        Message::PlayPosition(None),
                        toast_saved(done, &path, "no audio device: saved"),
                    ]
                }
            }
        }
        Effect::Stop => {
            if let Some(p) = player {
                p.stop();
            }
            Vec::new()
        }
        Effect::SetVolume(v) => {
            if let Some(p) = player {
                p.set_volume(v);
            }
            Vec::new()
        }
        Effect::SaveMidi { words, bpm } => {
            let path = next_name(saved, "mid");
            let done = write_midi(&from_words(&words).notes, bpm)
                .and_then(|bytes| crate::fsutil::write_atomic(&path, &bytes));
            vec![toast_saved(done, &path, "saved")]
        }
        Effect::SaveWav { words, bpm } => {
            let path = next_name(saved, "wav");
            let notes = synth::from_grid(&from_words(&words).notes, bpm);
            let done =
                synth::render_wav_file(&path, &notes, Format::STEREO_44K, WavEncoding::Pcm16);
            vec![toast_saved(done, &path, "saved")]
        }
        Effect::Quit => {
            let _ = app;
            Vec::new()
        }
    }
}

fn failed(why: &str) -> Message {
    Message::Finished {
        cancelled: false,
        elapsed: Duration::ZERO,
        error: Some(why.to_string()),
        words: None,
    }
}

fn toast_saved(done: Result<()>, path: &Path, what: &str) -> Message {
    Message::Toast(match done {
        Ok(()) => format!("{what} {}", path.display()),
        Err(e) => format!("could not save {}: {e:#}", path.display()),
    })
}

/// `nanotune-1.mid`, `nanotune-2.wav`, ...: the first name not taken in the current folder.
fn next_name(counter: &mut usize, ext: &str) -> PathBuf {
    loop {
        *counter += 1;
        let p = PathBuf::from(format!("nanotune-{}.{ext}", *counter));
        if !p.exists() {
            return p;
        }
    }
}

fn sample_options(s: &Settings) -> SampleOptions {
    SampleOptions {
        words: s.tokens,
        temperature: s.temperature as f32,
        top_k: s.top_k,
        top_p: s.top_p as f32,
        seed: s.seed,
        stop_at_end: false,
    }
}

fn build_prompt(
    prompt: Prompt,
    settings: &Settings,
    validation: Option<&SplitData>,
    options: &Options,
) -> Result<prompt::Prompt> {
    let words = options.prompt_words;
    match prompt {
        Prompt::New => Ok(prompt::new_piece()),
        Prompt::RandomSong => {
            let split = validation.context("no prepared dataset to continue a song from")?;
            let mut rng = StdRng::seed_from_u64(settings.seed);
            prompt::continue_song(split, None, words, &mut rng)
        }
        Prompt::Words { words, title } => Ok(prompt::Prompt {
            words: strip_end(words),
            title,
        }),
        Prompt::File(path) => prompt::continue_file(&path, words),
    }
}

fn strip_end(mut words: Vec<Word>) -> Vec<Word> {
    if words.last() == Some(&Word::End) {
        words.pop();
    }
    words
}
