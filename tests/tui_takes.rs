//! The screen's takes (issue 23, item 1): Takes set by keys, the takes made by the runtime on
//! the shipped model, the take on screen chosen by keys 1-8 and by a click on its number, and
//! play, save and Extend acting on the chosen take. Frames are drawn on ratatui's `TestBackend`.

mod common;

use common::recorder::Recorder;
use common::screen::drive;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use nanotune::learn::checkpoint::locate;
use nanotune::learn::device::Compute;
use nanotune::music::notes::from_words;
use nanotune::music::words::Titled;
use nanotune::music::words::{parse_words, Word};
use nanotune::sample::backend::{load_for, Weights};
use nanotune::sample::{generate, prompt, take_seed, SampleOptions};
use nanotune::sound::output::Output;
use nanotune::sound::timed;
use nanotune::tui::app::{update, App, ControlId, Effect, Environment, GenState, Message};
use nanotune::tui::layout::{takes_label, Areas};
use nanotune::tui::remember::{apply, settings_of};
use nanotune::tui::runtime::{Options, Runtime};
use nanotune::tui::saved::Settings;
use nanotune::tui::view::{status_text, view};
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::Terminal;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

fn app() -> App {
    let env = Environment {
        device: "cpu".into(),
        ..Environment::default()
    };
    let mut app = App::new(env, 42);
    // Pieces wait for space: these tests play takes by hand.
    app.play_while_made = false;
    app
}

fn press(app: &mut App, keys: &[KeyCode]) -> Vec<Effect> {
    keys.iter()
        .flat_map(|&k| update(app, Message::Key(KeyEvent::new(k, KeyModifiers::NONE))))
        .collect()
}

fn screen(app: &App, w: u16, h: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| view(app, f)).unwrap();
    let buf = terminal.backend().buffer().clone();
    (0..h)
        .map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect::<String>() + "\n")
        .collect()
}

fn click(app: &mut App, x: u16, y: u16) -> Vec<Effect> {
    let down = MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: x,
        row: y,
        modifiers: KeyModifiers::NONE,
    };
    update(app, Message::Mouse(down, Instant::now()))
}

/// Three takes as the runtime sends them: the prompt, each take's words tagged, the end.
fn three_takes(app: &mut App, takes: [&str; 3]) {
    update(
        app,
        Message::Started(Titled {
            words: vec![Word::Start],
            title: None,
        }),
    );
    let words: Vec<Vec<Word>> = takes.iter().map(|t| parse_words(t).0).collect();
    for (take, w) in words.iter().enumerate() {
        for &word in w {
            update(app, Message::Word { take, word });
        }
    }
    let whole = words
        .into_iter()
        .map(|w| [vec![Word::Start], w].concat())
        .collect();
    update(
        app,
        Message::Finished {
            cancelled: false,
            elapsed: Duration::from_millis(900),
            error: None,
            words: Some(whole),
        },
    );
}

const TAKES: [&str; 3] = [
    "n60 d4 END",
    "n64 d4 sepxx d4 n67 d4 END",
    "n72 d8 sepxx d8 n71 d8 sepxx d8 n69 d8 END",
];

#[test]
fn takes_are_set_by_keys_start_one_generation_and_are_kept_in_the_settings() {
    let mut a = app();
    assert_eq!(a.takes.count, 1, "one take keeps Enter instant");
    match &press(&mut a, &[KeyCode::Enter])[..] {
        [Effect::Generate { takes, .. }] => assert_eq!(*takes, 1),
        other => panic!("{other:?}"),
    }
    let mut a = app();
    press(&mut a, &[KeyCode::Char('t'); 3]);
    assert_eq!(a.takes.count, 4);
    press(&mut a, &[KeyCode::Char('t'); 9]);
    assert_eq!(a.takes.count, 8, "at most 8");
    press(&mut a, &[KeyCode::Char('T'); 5]);
    assert_eq!(a.takes.count, 3);
    match &press(&mut a, &[KeyCode::Enter])[..] {
        [Effect::Generate { takes, .. }] => assert_eq!(*takes, 3),
        other => panic!("{other:?}"),
    }
    assert!(screen(&a, 80, 24).contains(&takes_label(3)));
    assert_eq!(settings_of(&a).takes, Some(3.0));
    let mut b = app();
    apply(
        &mut b,
        &Settings {
            takes: Some(12.0),
            ..Settings::default()
        },
    );
    assert_eq!(b.takes.count, 8, "brought into 1-8");
}

#[test]
fn keys_and_a_click_switch_the_take_on_screen_while_generating_and_after() {
    let mut a = app();
    update(&mut a, Message::Resize(80, 24));
    press(
        &mut a,
        &[KeyCode::Char('t'), KeyCode::Char('t'), KeyCode::Enter],
    );
    // Half-way: take 2 already has words; 2 shows it and the progress counts its words.
    update(
        &mut a,
        Message::Started(Titled {
            words: vec![Word::Start],
            title: None,
        }),
    );
    for (take, word) in [(0, Word::Note(60)), (1, Word::Note(64)), (1, Word::Dur(4))] {
        update(&mut a, Message::Word { take, word });
    }
    assert_eq!(a.piece().words, parse_words("START n60").0);
    press(&mut a, &[KeyCode::Char('2')]);
    assert_eq!(a.piece().words, parse_words("START n64 d4").0);
    assert!(matches!(a.gen, GenState::Running { made: 2, .. }));
    assert!(
        status_text(&a).starts_with("take 2/3 | Generating"),
        "{}",
        status_text(&a)
    );
    // Words go on arriving for every take, the one on screen included.
    update(
        &mut a,
        Message::Word {
            take: 0,
            word: Word::Dur(4),
        },
    );
    update(
        &mut a,
        Message::Word {
            take: 1,
            word: Word::Sep,
        },
    );
    press(&mut a, &[KeyCode::Char('1')]);
    assert_eq!(a.piece().words, parse_words("START n60 d4").0);
    press(&mut a, &[KeyCode::Char('2')]);
    assert_eq!(a.piece().words, parse_words("START n64 d4 sepxx").0);
    // The end replaces what was streamed; take 2 stays on screen.
    update(
        &mut a,
        Message::Finished {
            cancelled: false,
            elapsed: Duration::from_millis(900),
            error: None,
            words: Some(
                TAKES
                    .iter()
                    .map(|t| [vec![Word::Start], parse_words(t).0].concat())
                    .collect(),
            ),
        },
    );
    assert_eq!(a.takes.chosen, 1);
    assert_eq!(from_words(&a.piece().words).notes.len(), 2);
    let two = screen(&a, 80, 24);
    assert!(
        two.contains("take 2/3 | Generation complete! 7 tokens"),
        "{two}"
    );
    assert!(two.contains(" 1 [2] 3 "), "{two}");
    // A click on "3" under the roll chooses take 3: the roll and the status change.
    let areas = Areas::of(Rect::new(0, 0, 80, 24)).unwrap();
    let y = areas.roll.bottom() - 1;
    let x = (areas.roll.x..areas.roll.right())
        .find(|&x| areas.take_at(x, y, a.takes.count, a.takes.made()) == Some(2))
        .expect("take 3's number is on the border");
    let line: String = two
        .lines()
        .nth(y as usize)
        .unwrap()
        .chars()
        .skip(x as usize)
        .take(3)
        .collect();
    assert_eq!(line, " 3 ", "the click lands on the number drawn");
    assert!(click(&mut a, x, y).is_empty());
    assert_eq!(a.takes.chosen, 2);
    let three = screen(&a, 80, 24);
    assert!(
        three.contains("take 3/3 | Generation complete! 11 tokens"),
        "{three}"
    );
    assert!(three.contains(" 1  2 [3]"), "{three}");
    assert_ne!(two, three, "the roll shows the other take");
    // A take that was not made is refused with a word; 72x22 still draws the takes.
    press(&mut a, &[KeyCode::Char('5')]);
    assert_eq!(a.takes.chosen, 2);
    assert!(a.toast.as_deref().unwrap().contains("there are 3"));
    assert!(screen(&a, 72, 22).contains("[3]"));
}

#[test]
fn play_save_and_extend_act_on_the_chosen_take_and_undo_comes_back() {
    let (recorder, heard) = Recorder::new();
    let sound = Output::Other(Box::new(recorder));
    let mut runtime = Runtime::new(None, sound, None, Options::default());
    let mut a = app();
    press(
        &mut a,
        &[KeyCode::Char('t'), KeyCode::Char('t'), KeyCode::Enter],
    );
    three_takes(&mut a, TAKES);
    press(&mut a, &[KeyCode::Char('3')]);
    let take3 = [vec![Word::Start], parse_words(TAKES[2]).0].concat();
    let notes3 = timed::from_grid(&from_words(&take3).notes, 120.0);
    for effect in press(&mut a, &[KeyCode::Char(' ')]) {
        runtime.carry_out(effect);
    }
    assert_eq!(heard.lock().unwrap().played.last(), Some(&notes3));
    // Choosing another take while playing plays it from where playback is.
    let effects = press(&mut a, &[KeyCode::Char('2')]);
    assert!(matches!(&effects[..], [Effect::Play { words, .. }] if words[1] == Word::Note(64)));
    for effect in effects {
        runtime.carry_out(effect);
    }
    assert_eq!(heard.lock().unwrap().played.len(), 2);
    assert_eq!(heard.lock().unwrap().played[1][0].pitch, 64);
    press(&mut a, &[KeyCode::Char(' '), KeyCode::Char('3')]);
    match &press(&mut a, &[KeyCode::Char('s'), KeyCode::Char('w')])[..] {
        [Effect::SaveMidi { words: m, .. }, Effect::SaveWav { words: w, .. }] => {
            assert_eq!((m, w), (&take3, &take3));
        }
        other => panic!("{other:?}"),
    }
    // Extend goes on from take 3; Undo brings it back as the one take.
    a.selected_action = 4;
    match &press(&mut a, &[KeyCode::Enter])[..] {
        [Effect::Generate {
            prompt: nanotune::tui::app::PromptSource::Given(p),
            takes,
            ..
        }] => {
            assert_eq!(p.words, prompt::extend(&take3, None).words);
            assert_eq!(*takes, 3);
        }
        other => panic!("{other:?}"),
    }
    three_takes(&mut a, ["n48 d4 END"; 3]);
    press(&mut a, &[KeyCode::Char('u')]);
    assert_eq!(a.piece().words, take3);
    assert_eq!(a.takes.made(), 1);
    assert!(!status_text(&a).contains("take "));
}

/// The runtime on the shipped model: 4 takes, each the one-take run of its seed; and one take is
/// exactly what `generate` gives today.
#[test]
fn the_runtime_makes_n_takes_on_the_shipped_model() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = locate(Some(&root.join("checkpoints"))).unwrap();
    let (model, _) = load_for(&dir, &Compute::cpu(), Weights::default()).unwrap();
    let mut runtime = Runtime::new(
        Some(model),
        Output::Silent("test".into()),
        None,
        Options::default(),
    );
    let (mut alone, _) = load_for(&dir, &Compute::cpu(), Weights::default()).unwrap();
    let mut a = app();
    a.controls[ControlId::Tokens].value = 60.0;
    a.seed_locked = true;
    let by_itself = |alone: &mut _, opts: SampleOptions| {
        generate(
            alone,
            &prompt::new_piece(),
            &opts,
            &AtomicBool::new(false),
            &mut |_| {},
        )
        .unwrap()
    };

    let enter = press(&mut a, &[KeyCode::Enter]);
    drive(&mut a, &mut runtime, enter);
    assert!(
        matches!(
            a.gen,
            GenState::Complete {
                cancelled: false,
                ..
            }
        ),
        "{:?}",
        a.gen
    );
    assert_eq!(
        a.piece().words,
        by_itself(&mut alone, a.options()).words,
        "one take is generate"
    );

    press(&mut a, &[KeyCode::Char('t'); 3]);
    let enter = press(&mut a, &[KeyCode::Enter]);
    drive(&mut a, &mut runtime, enter);
    assert_eq!(a.takes.made(), 4);
    let seed = a.options().seed;
    let mut pieces = Vec::new();
    for k in 0..4 {
        press(&mut a, &[KeyCode::Char(char::from(b'1' + k as u8))]);
        assert!(status_text(&a).starts_with(&format!("take {}/4 | Generation complete!", k + 1)));
        let opts = SampleOptions {
            seed: take_seed(seed, k),
            ..a.options()
        };
        assert_eq!(
            a.piece().words,
            by_itself(&mut alone, opts).words,
            "take {}",
            k + 1
        );
        assert_eq!(a.piece().words.last(), Some(&Word::End));
        pieces.push(a.piece().words.clone());
    }
    pieces.dedup();
    assert_eq!(pieces.len(), 4, "four different takes");
}
