//! The TUI without a terminal: key sequences drive `update`, and `view` is drawn on ratatui's
//! `TestBackend` and read back.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use nanotune::music::words::{parse_words, Word};
use nanotune::tui::app::{
    ctl, update, Action, App, Effect, Environment, GenState, Message, Prompt,
};
use nanotune::tui::view::view;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;
use std::time::Duration;

fn app() -> App {
    App::new(
        Environment {
            device: "cpu".into(),
            ..Environment::default()
        },
        42,
    )
}

fn key(code: KeyCode) -> Message {
    Message::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn press(app: &mut App, keys: &[KeyCode]) -> Vec<Effect> {
    keys.iter().flat_map(|&k| update(app, key(k))).collect()
}

fn render(app: &App, w: u16, h: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| view(app, f)).unwrap();
    terminal.backend().buffer().clone()
}

fn text(buf: &Buffer) -> String {
    let area = buf.area;
    (0..area.height)
        .map(|y| {
            (0..area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
                + "\n"
        })
        .collect()
}

/// Simulates the runtime for one generation: prompt, words, finish.
fn run_generation(app: &mut App, prompt: &str, title: Option<&str>, new: &str) {
    update(
        app,
        Message::Started {
            prompt: parse_words(prompt).0,
            title: title.map(String::from),
        },
    );
    for w in parse_words(new).0 {
        update(app, Message::Word(w));
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
    assert!((a.value(ctl::TEMPERATURE) - 1.00).abs() < 1e-9);
    update(
        &mut a,
        Message::Key(KeyEvent::new(KeyCode::Left, KeyModifiers::SHIFT)),
    );
    assert!((a.value(ctl::TEMPERATURE) - 0.75).abs() < 1e-9);
    press(&mut a, &[KeyCode::Char('['); 10]);
    assert!(
        (a.value(ctl::TEMPERATURE) - 0.05).abs() < 1e-9,
        "clamped at the minimum"
    );
    // j moves to Tokens; ] adds 500.
    press(&mut a, &[KeyCode::Char('j'), KeyCode::Char(']')]);
    assert_eq!(a.value(ctl::TOKENS), 1000.0);
}

#[test]
fn enter_at_once_makes_a_new_piece() {
    let mut a = app();
    let effects = press(&mut a, &[KeyCode::Enter]);
    match &effects[..] {
        [Effect::Generate {
            prompt: Prompt::New,
            settings,
        }] => {
            assert_eq!(settings.tokens, 500);
            assert_eq!(settings.top_k, 20);
            assert_eq!(settings.temperature, 0.9);
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
            prompt: Prompt::RandomSong,
            ..
        }]
    ));
    let first_seed = a.value(ctl::SEED);
    run_generation(&mut a, "START n60 d4 sepxx d4", Some("Für Elise"), "n64 d4");

    press(&mut a, &[KeyCode::Down]);
    let effects = press(&mut a, &[KeyCode::Enter]);
    match &effects[..] {
        [Effect::Generate {
            prompt: Prompt::Words { words, title },
            settings,
        }] => {
            assert_eq!(words, &parse_words("START n60 d4 sepxx d4").0);
            assert_eq!(title.as_deref(), Some("Für Elise"));
            assert_ne!(settings.seed as f64, first_seed, "a retry draws a new seed");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn locked_seed_is_kept() {
    let mut a = app();
    press(&mut a, &[KeyCode::Char('x')]);
    let seed = a.value(ctl::SEED);
    let effects = press(&mut a, &[KeyCode::Enter]);
    assert!(
        matches!(&effects[..], [Effect::Generate { settings, .. }] if settings.seed as f64 == seed)
    );
}

#[test]
fn escape_cancels_and_keeps_the_partial_piece() {
    let mut a = app();
    press(&mut a, &[KeyCode::Enter]);
    update(
        &mut a,
        Message::Started {
            prompt: vec![Word::Start],
            title: None,
        },
    );
    update(&mut a, Message::Word(Word::Note(60)));
    update(&mut a, Message::Word(Word::Dur(4)));
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
    assert_eq!(a.piece.words.len(), 3);
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
            prompt: Prompt::Words { words, .. },
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
    assert_eq!(a.piece.words.len(), 8);
    press(&mut a, &[KeyCode::Char('u')]);
    assert_eq!(a.piece.words, parse_words("START n60 d4 END").0);
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
        "Undo last extension",
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
    // The roll's inner area: right of the 44-wide left panel and its border, below the title line.
    let x0 = 44 + 1 + nanotune::tui::roll::AXIS_WIDTH;
    let y0 = 2u16;
    let inner_rows = h - 3 - 2; // title, progress, status, two borders
    let (lo, hi) = nanotune::tui::roll::pitch_range(
        &nanotune::music::notes::from_words(&a.piece.words).notes,
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
