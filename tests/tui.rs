//! The TUI without a terminal: key sequences drive `update`, and `view` is drawn on ratatui's
//! `TestBackend` and read back.

mod common;

use common::recorder::Recorder;
use common::screen::{app, key, press, render, text};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use nanotune::learn::checkpoint::locate;
use nanotune::learn::device::Compute;
use nanotune::music::words::Titled;
use nanotune::music::words::{parse_words, Word};
use nanotune::sample::backend::{load_for, Weights};
use nanotune::sound::output::Output;
use nanotune::tui::app::{
    update, Action, App, ControlId, Effect, Environment, GenState, Message, PromptSource,
};
use nanotune::tui::runtime::{Options, Runtime};
use std::path::Path;
use std::time::{Duration, Instant};

/// Simulates the runtime for one generation: prompt, words, finish.
fn run_generation(app: &mut App, prompt: &str, title: Option<&str>, new: &str) {
    update(
        app,
        Message::Started(Titled {
            words: parse_words(prompt).0,
            title: title.map(String::from),
        }),
    );
    for w in parse_words(new).0 {
        update(app, Message::Word { take: 0, word: w });
    }
    update(
        app,
        Message::Finished {
            cancelled: false,
            elapsed: Duration::from_millis(1500),
            error: None,
            words: None,
        },
    );
}

#[test]
fn temperature_changes_in_small_and_large_steps() {
    let mut a = app();
    // The app opens on the menu with New piece selected; Tab goes to the controls.
    assert_eq!(a.selected_action, 0);
    press(&mut a, &[KeyCode::Tab, KeyCode::Right, KeyCode::Right]);
    assert!((a.value(ControlId::Temperature) - 1.00).abs() < 1e-9);
    update(
        &mut a,
        Message::Key(KeyEvent::new(KeyCode::Left, KeyModifiers::SHIFT)),
    );
    assert!((a.value(ControlId::Temperature) - 0.75).abs() < 1e-9);
    press(&mut a, &[KeyCode::Char('['); 10]);
    assert!(
        (a.value(ControlId::Temperature) - 0.05).abs() < 1e-9,
        "clamped at the minimum"
    );
    // j moves to Tokens; ] adds 500.
    press(&mut a, &[KeyCode::Char('j'), KeyCode::Char(']')]);
    assert_eq!(a.value(ControlId::Tokens), 1000.0);
}

#[test]
fn enter_at_once_makes_a_new_piece() {
    let mut a = app();
    let effects = press(&mut a, &[KeyCode::Enter]);
    match &effects[..] {
        [Effect::Generate {
            prompt: PromptSource::New,
            options,
            ..
        }] => {
            assert_eq!(options.words, 500);
            assert_eq!(options.top_k, 20);
            assert_eq!(options.temperature, 0.9);
        }
        other => panic!("{other:?}"),
    }
    assert!(a.is_generating());
    // A second Enter while generating starts nothing.
    assert!(press(&mut a, &[KeyCode::Enter]).is_empty());
    run_generation(&mut a, "START", None, "n60 d4 sepxx d4 n62 d4");
    assert!(matches!(
        a.gen,
        GenState::Complete {
            tokens: 6,
            cancelled: false,
            ..
        }
    ));
}

#[test]
fn continue_then_retry_reuses_the_prompt_with_a_new_seed() {
    let mut a = app();
    // Retry is disabled until a Continue has run.
    press(&mut a, &[KeyCode::Down, KeyCode::Down]);
    assert_eq!(a.selected_action, 2);
    assert!(press(&mut a, &[KeyCode::Enter]).is_empty());
    assert!(a.toast.as_deref().unwrap().contains("continue a song"));

    press(&mut a, &[KeyCode::Up]);
    let effects = press(&mut a, &[KeyCode::Enter]);
    assert!(matches!(
        &effects[..],
        [Effect::Generate {
            prompt: PromptSource::RandomSong,
            ..
        }]
    ));
    let first_seed = a.value(ControlId::Seed);
    run_generation(&mut a, "START n60 d4 sepxx d4", Some("Für Elise"), "n64 d4");

    press(&mut a, &[KeyCode::Down]);
    let effects = press(&mut a, &[KeyCode::Enter]);
    match &effects[..] {
        [Effect::Generate {
            prompt: PromptSource::Given(Titled { words, title }),
            options,
            ..
        }] => {
            assert_eq!(words, &parse_words("START n60 d4 sepxx d4").0);
            assert_eq!(title.as_deref(), Some("Für Elise"));
            assert_ne!(options.seed as f64, first_seed, "a retry draws a new seed");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn locked_seed_is_kept() {
    let mut a = app();
    press(&mut a, &[KeyCode::Char('x')]);
    let seed = a.value(ControlId::Seed);
    let effects = press(&mut a, &[KeyCode::Enter]);
    assert!(
        matches!(&effects[..], [Effect::Generate { options, .. }] if options.seed as f64 == seed)
    );
}

#[test]
fn escape_cancels_and_keeps_the_partial_piece() {
    let mut a = app();
    press(&mut a, &[KeyCode::Enter]);
    update(
        &mut a,
        Message::Started(Titled {
            words: vec![Word::Start],
            title: None,
        }),
    );
    update(
        &mut a,
        Message::Word {
            take: 0,
            word: Word::Note(60),
        },
    );
    update(
        &mut a,
        Message::Word {
            take: 0,
            word: Word::Dur(4),
        },
    );
    assert_eq!(press(&mut a, &[KeyCode::Esc]), vec![Effect::Cancel]);
    update(
        &mut a,
        Message::Finished {
            cancelled: true,
            elapsed: Duration::from_millis(10),
            error: None,
            words: None,
        },
    );
    assert!(matches!(
        a.gen,
        GenState::Complete {
            tokens: 2,
            cancelled: true,
            ..
        }
    ));
    assert_eq!(a.piece().words.len(), 3);
}

#[test]
fn extend_and_undo() {
    let mut a = app();
    press(&mut a, &[KeyCode::Enter]);
    run_generation(&mut a, "START", None, "n60 d4 END");
    a.selected_action = Action::ALL
        .iter()
        .position(|&x| x == Action::Extend)
        .unwrap();
    let effects = press(&mut a, &[KeyCode::Enter]);
    match &effects[..] {
        [Effect::Generate {
            prompt: PromptSource::Given(Titled { words, .. }),
            ..
        }] => {
            assert_eq!(
                words,
                &parse_words("START n60 d4").0,
                "END dropped to go on"
            );
        }
        other => panic!("{other:?}"),
    }
    run_generation(&mut a, "START n60 d4", None, "sepxx d4 n62 d4 END");
    assert_eq!(a.piece().words.len(), 8);
    press(&mut a, &[KeyCode::Char('u')]);
    assert_eq!(a.piece().words, parse_words("START n60 d4 END").0);
    assert!(a.history.is_empty());
}

#[test]
fn play_save_help_and_quit_keys() {
    let mut a = app();
    assert!(
        press(&mut a, &[KeyCode::Char(' ')]).is_empty(),
        "nothing to play yet"
    );
    press(&mut a, &[KeyCode::Enter]);
    run_generation(&mut a, "START", None, "n60 d4 END");
    assert!(matches!(
        &press(&mut a, &[KeyCode::Char(' ')])[..],
        [Effect::Play { .. }]
    ));
    assert_eq!(press(&mut a, &[KeyCode::Char(' ')]), vec![Effect::Stop]);
    assert!(matches!(
        &press(&mut a, &[KeyCode::Char('s')])[..],
        [Effect::SaveMidi { .. }]
    ));
    assert!(matches!(
        &press(&mut a, &[KeyCode::Char('w')])[..],
        [Effect::SaveWav { .. }]
    ));
    press(&mut a, &[KeyCode::Char('?')]);
    assert!(a.help_open);
    assert!(
        press(&mut a, &[KeyCode::Enter]).is_empty(),
        "keys go to the popup"
    );
    press(&mut a, &[KeyCode::Esc]);
    assert!(!a.help_open);
    assert!(press(&mut a, &[KeyCode::Char('q')]).contains(&Effect::Quit));
    assert!(a.quit);
}

#[test]
fn gauges_show_their_values_and_ranges() {
    let mut a = app();
    press(&mut a, &[KeyCode::Tab, KeyCode::Right]);
    let screen = text(&render(&a, 120, 30));
    for expected in [
        "Temperature",
        "0.95 0.05..2.00",
        "Tokens",
        "500 50..4000",
        "Top-k",
        "20 1..219",
        "Top-p",
        "BPM",
        "120 40..240",
        "Volume",
        "Seed",
        "New piece",
        "Continue song",
        "Undo last change",
        "Answer what I play",
        "Ready",
    ] {
        assert!(
            screen.contains(expected),
            "missing {expected:?} in\n{screen}"
        );
    }
}

#[test]
fn roll_draws_a_chord_at_the_right_rows() {
    let mut a = app();
    press(&mut a, &[KeyCode::Enter]);
    // C major: C5 (72), E4 (64), C4 (60), four steps long.
    run_generation(&mut a, "START", None, "n72 d4 n64 d4 n60 d4 END");
    let (w, h) = (100u16, 30u16);
    let buf = render(&a, w, h);
    let screen = text(&buf);
    // The roll's notes: right of the 44-wide left panel and its border, below the title line,
    // the roll's border and its bar ruler.
    let x0 = 44 + 1 + nanotune::tui::roll::AXIS_WIDTH;
    let y0 = 3u16;
    let inner_rows = h - 3 - 2 - 1; // title, progress, status, two borders, the ruler
    assert_eq!(
        buf[(x0, y0 - 1)].symbol(),
        "1",
        "bar 1 on the ruler\n{screen}"
    );
    let (lo, hi) = nanotune::tui::roll::pitch_range(
        &nanotune::music::notes::from_words(&a.piece().words).notes,
        inner_rows,
    );
    assert!(lo <= 60 && hi >= 72);
    let cell_of = |pitch: u8| {
        let from_top = (hi - pitch) as u16;
        (y0 + from_top / 2, from_top % 2)
    };
    for pitch in [72u8, 64, 60] {
        let (row, half) = cell_of(pitch);
        let symbol = buf[(x0, row)].symbol();
        let want = if half == 0 { "▀" } else { "▄" };
        assert!(
            symbol == want || symbol == "█",
            "pitch {pitch} at row {row}: {symbol:?}\n{screen}"
        );
        // Four steps at zoom 1: four columns, then silence.
        assert_eq!(buf[(x0 + 3, row)].symbol(), symbol);
        assert_eq!(buf[(x0 + 4, row)].symbol(), " ");
    }
    // No other pitch rows are lit in the first column.
    let lit = (y0..y0 + inner_rows)
        .filter(|&y| buf[(x0, y)].symbol() != " ")
        .count();
    assert_eq!(lit, 3, "\n{screen}");
    // The C labels are on the axis.
    assert!(screen.contains("C4") && screen.contains("C5"));
}

#[test]
fn roll_title_names_the_key_of_the_new_part() {
    let mut a = app();
    assert!(
        !text(&render(&a, 100, 30)).contains("key "),
        "no notes, no key"
    );
    press(&mut a, &[KeyCode::Enter]);
    // A prompt that only G major holds (C, F#, G), then new notes in D major (D, F#, A, C#).
    run_generation(
        &mut a,
        "START n72 d4 n66 d4 n55 d4 sepxx d4",
        None,
        "n74 d4 n66 d4 n57 d4 sepxx d4 n73 d4 END",
    );
    let screen = text(&render(&a, 100, 30));
    assert!(screen.contains("■ new key D / Bm "), "{screen}");
    // While only the prompt is there, its key is shown.
    run_generation(&mut a, "START n72 d4 n66 d4 n55 d4 sepxx d4", None, "");
    let screen = text(&render(&a, 100, 30));
    assert!(screen.contains("■ new key G / Em "), "{screen}");
}

#[test]
fn status_line_says_generation_complete() {
    let mut a = app();
    press(&mut a, &[KeyCode::Enter]);
    update(&mut a, Message::Tick(Duration::from_millis(500)));
    let screen = text(&render(&a, 100, 30));
    assert!(screen.contains("generating 0/500 words"), "{screen}");
    run_generation(&mut a, "START", None, "n60 d4 sepxx d4 n62 d4 END");
    let screen = text(&render(&a, 100, 30));
    assert!(
        screen.contains("Generation complete! 7 tokens, 1.0 s of music, took 1.5 s"),
        "{screen}"
    );
    // It keeps saying so until the next action.
    update(&mut a, key(KeyCode::Tab));
    assert!(text(&render(&a, 100, 30)).contains("Generation complete!"));
    // At 80 columns a newer message comes first and whole; the rest follows as far as it fits.
    let news = "no audio device: saved nanotune-12.wav (cannot open the card)";
    update(&mut a, Message::Toast(news.into()));
    let screen = text(&render(&a, 80, 24));
    let last = screen.lines().last().unwrap();
    assert!(last.starts_with(news), "{last}");
    assert!(last.contains("| Generation compl"), "{last}");
    // Where it all fits, the order is the usual one.
    let wide = text(&render(&a, 200, 30));
    assert!(
        wide.contains(&format!("took 1.5 s; 0.5 bars | {news}")),
        "{wide}"
    );
}

#[test]
fn tiny_terminal_asks_to_enlarge_and_nothing_panics() {
    let mut a = app();
    let screen = text(&render(&a, 20, 5));
    assert!(screen.contains("Terminal too"), "{screen}");
    assert!(screen.contains("enlarge"), "{screen}");
    press(&mut a, &[KeyCode::Enter]);
    run_generation(&mut a, "START", None, "n21 d128 n108 d1 END");
    for (w, h) in [(1, 1), (0, 0), (72, 22), (71, 40), (300, 100), (73, 23)] {
        render(&a, w, h);
    }
    press(&mut a, &[KeyCode::Char('?')]);
    render(&a, 72, 22);
}

#[test]
fn missing_model_and_dataset_are_explained() {
    let env = Environment {
        model_error: Some("no checkpoint found: train one with `nanotune train`".into()),
        dataset_error: Some("no prepared dataset: run `nanotune prepare`".into()),
        audio_error: Some("no audio device".into()),
        device: "cpu".into(),
        ..Environment::default()
    };
    let mut a = App::new(env, 1);
    assert!(press(&mut a, &[KeyCode::Enter]).is_empty());
    let screen = text(&render(&a, 120, 30));
    assert!(
        screen.contains("No model to generate with") && screen.contains("nanotune train"),
        "{screen}"
    );
    assert!(screen.contains("no audio device"), "{screen}");
}

#[test]
fn playhead_is_drawn_while_playing() {
    let mut a = app();
    press(&mut a, &[KeyCode::Enter]);
    run_generation(&mut a, "START", None, "n60 d32 END");
    assert!(matches!(
        &press(&mut a, &[KeyCode::Char(' ')])[..],
        [Effect::Play { .. }]
    ));
    // 1.0 s at 120 bpm is step 8: the ninth column of the roll.
    update(&mut a, Message::PlayPosition(Some(1.0)));
    let buf = render(&a, 100, 30);
    let x = 44 + 1 + nanotune::tui::roll::AXIS_WIDTH + 8;
    let column: Vec<&str> = (2..27).map(|y| buf[(x, y)].symbol()).collect();
    assert!(
        column.iter().filter(|s| **s == "│").count() > 20,
        "{column:?}"
    );
    assert!(text(&buf).contains("playing 1.0/4.0 s"));
    // Playback ended: no playhead.
    update(&mut a, Message::PlayPosition(None));
    let buf = render(&a, 100, 30);
    assert!((2..27).all(|y| buf[(x, y)].symbol() != "│"));
}

/// Does `act` (keys), hands its effects to the runtime and the runtime's messages to `update`,
/// then polls the runtime as the event loop does until the generation ends.
fn drive(app: &mut App, runtime: &mut Runtime, act: impl FnOnce(&mut App) -> Vec<Effect>) {
    for effect in act(app) {
        for msg in runtime.carry_out(effect) {
            update(app, msg);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while app.is_generating() {
        for msg in runtime.poll(app.playing.is_some()) {
            update(app, msg);
        }
        assert!(Instant::now() < deadline, "the generation never ended");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn choose(app: &mut App, action: Action) -> Vec<Effect> {
    app.selected_action = Action::ALL.iter().position(|&x| x == action).unwrap();
    press(app, &[KeyCode::Enter])
}

/// The screen's runtime on the shipped model, without a terminal: Continue file reads a real
/// MIDI file from its first `--prompt-words`, Retry runs the same prompt again, Extend goes on
/// from the whole piece, and a Continue song without a dataset fails cleanly keeping the model.
#[test]
fn the_runtime_continues_retries_and_extends_with_the_shipped_model() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = locate(Some(&root.join("checkpoints"))).unwrap();
    let (model, _) = load_for(&dir, &Compute::cpu(), Weights::default()).unwrap();
    let options = Options {
        prompt_words: 20,
        ..Options::default()
    };
    let mut runtime = Runtime::new(Some(model), Output::Silent("test".into()), None, options);
    let mut a = app();
    a.controls[ControlId::Tokens].value = 50.0;

    let file = root.join("docs/examples/continuation.mid");
    assert!(
        choose(&mut a, Action::ContinueFile).is_empty(),
        "asks for the path"
    );
    let keys: Vec<KeyCode> = file.to_str().unwrap().chars().map(KeyCode::Char).collect();
    press(&mut a, &keys);
    drive(&mut a, &mut runtime, |a| press(a, &[KeyCode::Enter]));
    assert!(
        matches!(a.gen, GenState::Complete { tokens, cancelled: false, .. } if tokens >= 50),
        "{:?}",
        a.gen
    );
    assert_eq!(a.piece().title.as_deref(), Some("continuation"));
    let first = a.piece().clone();
    // The file's first 20 words cut back to a whole note: the library's prompt, as generate has it.
    let want = nanotune::sample::prompt::continue_file(&file, 20).unwrap();
    assert!((2..=20).contains(&want.words.len()));
    assert_eq!(first.words[..first.prompt_len], want.words[..]);
    assert_eq!(first.words[0], Word::Start);
    assert_eq!(first.words.last(), Some(&Word::End));

    drive(&mut a, &mut runtime, |a| choose(a, Action::Retry));
    assert!(matches!(a.gen, GenState::Complete { .. }), "{:?}", a.gen);
    assert_eq!(
        a.piece().words[..a.piece().prompt_len],
        first.words[..first.prompt_len]
    );
    assert_eq!(a.piece().title, first.title);
    assert_ne!(a.piece().words, first.words, "a retry draws a new seed");

    let before = a.piece().words.clone();
    drive(&mut a, &mut runtime, |a| choose(a, Action::Extend));
    assert!(matches!(a.gen, GenState::Complete { .. }), "{:?}", a.gen);
    assert_eq!(
        a.piece().prompt_len,
        before.len() - 1,
        "all but END is the prompt"
    );
    assert_eq!(
        a.piece().words[..before.len() - 1],
        before[..before.len() - 1]
    );
    assert!(a.piece().words.len() >= before.len() + 50);

    drive(&mut a, &mut runtime, |a| choose(a, Action::ContinueSong));
    assert!(
        matches!(&a.gen, GenState::Failed(e) if e.contains("no prepared dataset")),
        "{:?}",
        a.gen
    );
    drive(&mut a, &mut runtime, |a| choose(a, Action::NewPiece));
    assert!(
        matches!(
            a.gen,
            GenState::Complete {
                cancelled: false,
                ..
            }
        ),
        "the model came back after the failure: {:?}",
        a.gen
    );
}

#[test]
fn the_sound_output_gets_the_piece_in_seconds_and_reports_the_playhead() {
    let (recorder, heard) = Recorder::new();
    let sound = Output::Other(Box::new(recorder));
    let mut runtime = Runtime::new(None, sound, None, Options::default());
    let mut a = app();
    press(&mut a, &[KeyCode::Enter]);
    run_generation(&mut a, "START", None, "n60 d32 sepxx d32 n67 d8 END");
    drive(&mut a, &mut runtime, |a| press(a, &[KeyCode::Char(' ')]));
    {
        let heard = heard.lock().unwrap();
        // 120 bpm: a step is 1/8 s; 32 steps are 4 s.
        let notes: Vec<(u8, f64, f64)> = heard.played[0]
            .iter()
            .map(|n| (n.pitch, n.start, n.duration))
            .collect();
        assert_eq!(notes, [(60, 0.0, 4.0), (67, 4.0, 1.0)]);
        assert_eq!(heard.volume, Some(0.8));
    }
    heard.lock().unwrap().position = Some(2.5);
    for msg in runtime.poll(a.playing.is_some()) {
        update(&mut a, msg);
    }
    assert_eq!(a.playing, Some(2.5));
    // The piece ended: the playhead goes.
    heard.lock().unwrap().position = None;
    for msg in runtime.poll(a.playing.is_some()) {
        update(&mut a, msg);
    }
    assert_eq!(a.playing, None);
    // Volume keys reach the output; space stops it while playing.
    press(&mut a, &[KeyCode::Tab]);
    a.selected_control = ControlId::Volume;
    drive(&mut a, &mut runtime, |a| press(a, &[KeyCode::Left]));
    assert_eq!(heard.lock().unwrap().volume, Some(0.75));
    drive(&mut a, &mut runtime, |a| press(a, &[KeyCode::Char(' ')]));
    assert_eq!(heard.lock().unwrap().played.len(), 2);
    drive(&mut a, &mut runtime, |a| press(a, &[KeyCode::Char(' ')]));
    assert_eq!(heard.lock().unwrap().stops, 1);
}

/// The roll follows the music: after a continuation of a long prompt it starts the bar before
/// the new notes, and after a new piece that opens with bars of silence, the bar before its first
/// note; a new piece that starts at once stays at the start.
#[test]
fn after_a_generation_the_roll_shows_where_the_new_notes_are() {
    let mut a = app();
    press(&mut a, &[KeyCode::Enter]);
    // Ten bars of prompt (one note a bar), then new notes from bar 11.
    let prompt = format!("START {}", "n60 d16 sepxx d16 ".repeat(10));
    run_generation(&mut a, &prompt, Some("Song"), "n72 d4 sepxx d4 n74 d4 END");
    assert_eq!(a.scroll, 9 * 16);
    // A new piece that opens with four silent bars.
    press(&mut a, &[KeyCode::Enter]);
    run_generation(&mut a, "START", None, "sepxx d64 n67 d4 END");
    assert_eq!(a.scroll, 3 * 16);
    press(&mut a, &[KeyCode::Enter]);
    run_generation(&mut a, "START", None, "n67 d4 END");
    assert_eq!(a.scroll, 0);
}
