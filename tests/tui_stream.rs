//! Pieces play while they are made: the screen's own loop on the shipped model sends the chosen
//! take to a listener in this process (both ends of a real socket) as its words come, so the
//! listener plays it before the generation ends, and keeps it whole once it is; an answer to a
//! phrase begins at its first new note. `a` switches it off: then nothing plays until space.

mod common;

use common::listener::{keys, phrase_file, TestListener};
use common::screen::{app, choose_action, keys_in, press, run_until, shipped_runtime_to};
use crossterm::event::KeyCode;
use nanotune::music::notes::from_words;
use nanotune::music::read::piece_from_midi;
use nanotune::sound::output::Output;
use nanotune::sound::playback::Playback;
use nanotune::tui::app::{Action, App, ControlId, Focus, GenState};
use std::time::Duration;

/// The notes of the piece the listener saved last under `piece N`.
fn saved_notes(listener: &TestListener, what: &str) -> Vec<nanotune::music::notes::Note> {
    let line = listener.logged(&format!("{what}: saved"));
    let path = line.rsplit("saved ").next().unwrap();
    let words = piece_from_midi(&std::fs::read(path).unwrap(), &mut Default::default()).unwrap();
    from_words(&words).notes
}

#[test]
fn a_new_piece_plays_on_the_listener_before_it_is_made_and_is_kept_whole() {
    let listener = TestListener::start();
    let mut runtime = shipped_runtime_to(Output::Listener(listener.client()));
    let mut a = app();
    a.play_while_made = true;
    // Long enough that making it takes a while on any CPU (about a third of a second here).
    a.controls[ControlId::Tokens].value = 1500.0;
    a.focus = Focus::Menu;
    keys_in(&mut a, &mut runtime, &[KeyCode::Enter]);
    assert!(a.is_generating());
    run_until(&mut a, &mut runtime, Duration::from_secs(120), |a| {
        !a.is_generating()
    });
    // It began at the listener while the model was still writing: the playhead there had
    // come most of the way the model took by the time the last word was made.
    let position = runtime.listener().map(|c| c.position_seconds()).unwrap();
    let GenState::Complete { took, .. } = a.gen else {
        panic!("{:?}", a.gen)
    };
    assert!(took > Duration::from_millis(100), "{took:?}");
    assert!(
        position > 0.5 * took.as_secs_f64(),
        "played {position} s of a piece made in {took:?}"
    );
    let begun = listener.logged("begins as it is made");
    assert!(begun.starts_with("piece 1: \"new piece, seed"), "{begun}");
    assert!(a.playing.is_some());
    // Whole at the listener: the screen's piece, note for note.
    let kept = saved_notes(&listener, "piece 1");
    assert_eq!(kept, from_words(&a.piece().words).notes);
    assert!(kept.len() > 200, "{} notes", kept.len());

    // `a`: the next piece waits for space.
    keys_in(&mut a, &mut runtime, &[KeyCode::Char('a')]);
    assert!(!a.play_while_made);
    let kept = nanotune::tui::remember::settings_of(&a);
    assert_eq!(kept.play_while_made, Some(false), "kept for the next start");
    a.controls[ControlId::Tokens].value = 100.0;
    keys_in(&mut a, &mut runtime, &[KeyCode::Enter]);
    run_until(&mut a, &mut runtime, Duration::from_secs(60), |a| {
        !a.is_generating()
    });
    assert!(a.playing.is_none());
    std::thread::sleep(Duration::from_millis(200));
    let log = listener.log.lock().unwrap().clone();
    assert!(!log.iter().any(|l| l.starts_with("piece 2")), "{log:?}");
}

#[test]
fn an_answer_plays_from_its_first_note_as_it_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let (file, phrases) = phrase_file(dir.path(), &[(1, 2)]);
    let listener = TestListener::start_with(Some(keys(&file)));
    let mut runtime = shipped_runtime_to(Output::Listener(listener.client()));
    let mut a = app();
    a.play_while_made = true;
    a.controls[ControlId::Bpm].value = 240.0;
    a.controls[ControlId::Tokens].value = 600.0;
    choose_action(&mut a, &mut runtime, Action::Answer);
    run_until(&mut a, &mut runtime, Duration::from_secs(60), |a| {
        matches!(a.gen, GenState::Complete { .. })
    });
    let prompt = &a.piece().words[..a.piece().prompt_len];
    assert_eq!(from_words(prompt).notes, phrases[0]);
    let begun = listener.logged("begins as it is made");
    assert!(begun.contains("phrase 1 continued"), "{begun}");
    // It played from the answer's first note, not from the phrase.
    let prompt_notes = from_words(prompt).notes.len();
    let first = from_words(&a.piece().words).notes[prompt_notes].onset;
    let from = first as f64 * 60.0 / 240.0 / 4.0;
    let at = a.playing.expect("the answer plays");
    assert!(at >= from - 1e-9, "{at} from {from}");
    let kept = saved_notes(&listener, "piece 1");
    assert_eq!(kept, from_words(&a.piece().words).notes);
}

/// The screen's side alone, message by message: a new piece plays from its start at once and
/// grows at each frame with new words; an extension waits for its first new note and plays from
/// there; the end makes it whole; with `a` off nothing plays until space.
#[test]
fn the_screen_plays_from_the_start_or_the_first_new_note_and_grows_each_frame() {
    use nanotune::music::words::Titled;
    use nanotune::music::words::{parse_words, Word};
    use nanotune::tui::app::{update, Effect, Message};
    let words = |text: &str| parse_words(text).0;
    let started = |a: &mut App, prompt: Vec<Word>| {
        let title = None;
        update(
            a,
            Message::Started(Titled {
                words: prompt,
                title,
            }),
        )
    };
    let made = |a: &mut App, text: &str| {
        for word in words(text) {
            update(a, Message::Word { take: 0, word });
        }
    };
    let tick = |a: &mut App| update(a, Message::Tick(Duration::from_millis(30)));
    let finish = |a: &mut App| {
        let elapsed = Duration::from_millis(30);
        let (cancelled, error, words) = (false, None, None);
        update(
            a,
            Message::Finished {
                cancelled,
                elapsed,
                error,
                words,
            },
        )
    };
    let mut a = app();
    a.play_while_made = true;
    a.focus = Focus::Menu;
    // New piece: it plays at Started, before any word.
    assert!(matches!(
        &press(&mut a, &[KeyCode::Enter])[..],
        [Effect::Generate { .. }]
    ));
    let begun = started(&mut a, words("START"));
    assert!(
        matches!(&begun[..], [Effect::Play { open: true, from, .. }] if *from == 0.0),
        "{begun:?}"
    );
    assert!(tick(&mut a).is_empty(), "nothing new, nothing sent");
    made(&mut a, "n60 d4 sepxx d4 n64 d4");
    match &tick(&mut a)[..] {
        [Effect::Grow {
            words: sent,
            whole: false,
            ..
        }] => assert_eq!(sent.len(), 7),
        other => panic!("{other:?}"),
    }
    made(&mut a, "sepxx d4 END");
    assert!(matches!(
        &finish(&mut a)[..],
        [Effect::Grow { whole: true, .. }]
    ));
    assert!(tick(&mut a).is_empty());

    // Extend: nothing plays until the first new note, then from it (120 bpm: a step is 1/8 s).
    a.selected_action = Action::ALL
        .iter()
        .position(|&x| x == Action::Extend)
        .unwrap();
    press(&mut a, &[KeyCode::Enter]);
    let before = a.piece().words.clone();
    assert!(started(&mut a, before).is_empty());
    made(&mut a, "sepxx d8");
    assert!(tick(&mut a).is_empty(), "no new note yet");
    made(&mut a, "n67 d2");
    let from = match &tick(&mut a)[..] {
        [Effect::Play {
            open: true, from, ..
        }] => *from,
        other => panic!("{other:?}"),
    };
    // The piece before ended at step 8; after 8 steps of rest the new note is at step 16.
    assert!((from - 16.0 / 8.0).abs() < 1e-9, "{from}");
    assert!(matches!(
        &finish(&mut a)[..],
        [Effect::Grow { whole: true, .. }]
    ));

    // `a` off: a new piece does not play until space.
    press(&mut a, &[KeyCode::Char('a')]);
    a.selected_action = 0;
    press(&mut a, &[KeyCode::Enter]);
    assert!(started(&mut a, words("START")).is_empty());
    made(&mut a, "n60 d4");
    assert!(tick(&mut a).is_empty());
}
