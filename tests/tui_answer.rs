//! "Answer what I play" on the screen (frames in ratatui's TestBackend), the listener in this
//! process hearing a real MIDI file's bars as its keyboard: the phrase arrives, becomes the
//! prompt, the shipped model answers, the answer goes back and plays there (saved), the screen
//! waits for the next phrase until Esc. Without a listener the action says what it needs.

mod common;

use common::listener::{keys, phrase_file, TestListener};
use common::screen::{
    app, choose_action, press, render, run_until, shipped_runtime, shipped_runtime_to, text,
};
use crossterm::event::KeyCode;
use nanotune::music::notes::from_words;
use nanotune::sound::output::Output;
use nanotune::tui::app::{Action, ControlId, GenState};
use nanotune::tui::run::deliver;
use std::time::Duration;

#[test]
fn a_phrase_played_on_the_laptop_is_answered_there_until_esc() {
    let dir = tempfile::tempdir().unwrap();
    let (file, phrases) = phrase_file(dir.path(), &[(1, 2)]);
    let listener = TestListener::start_with(Some(keys(&file)));
    let mut runtime = shipped_runtime_to(Output::Listener(listener.client()));
    let mut a = app();
    // Quick: the fastest tempo, a short answer.
    a.controls[ControlId::Bpm].value = 240.0;
    a.controls[ControlId::Tokens].value = 80.0;
    choose_action(&mut a, &mut runtime, Action::Answer);
    assert!(a.answering.on);
    run_until(&mut a, &mut runtime, Duration::from_secs(10), |a| {
        a.toast
            .as_deref()
            .is_some_and(|t| t.starts_with("play a phrase"))
    });
    assert!(a.toast.as_ref().unwrap().contains("phrases.mid"));
    assert!(text(&render(&a, 100, 30)).contains("waiting for a phrase"));

    // The phrase arrives, is answered, and the answer plays on the laptop.
    run_until(&mut a, &mut runtime, Duration::from_secs(60), |a| {
        matches!(a.gen, GenState::Complete { .. }) && a.playing.is_some()
    });
    let prompt = &a.piece().words[..a.piece().prompt_len];
    assert_eq!(
        from_words(prompt).notes,
        phrases[0],
        "the prompt is the phrase"
    );
    assert!(
        a.piece().words.len() > a.piece().prompt_len + 20,
        "an answer"
    );
    assert_eq!(a.piece().title.as_deref(), Some("phrase 1"));
    assert!(text(&render(&a, 100, 30)).contains("answered: play the next phrase"));
    listener.logged("phrase 1:");
    let played = listener.logged("piece 1:");
    assert!(played.contains("phrase 1 continued"), "{played}");
    let saved = listener.logged("piece 1: saved");
    let path = saved.rsplit("saved ").next().unwrap();
    let words = nanotune::music::read::piece_from_midi(
        &std::fs::read(path).unwrap(),
        &mut Default::default(),
    )
    .unwrap();
    assert_eq!(from_words(&words).notes, from_words(&a.piece().words).notes);

    // Esc stops answering.
    for effect in press(&mut a, &[KeyCode::Esc]) {
        let messages = runtime.carry_out(effect);
        deliver(&mut a, &mut runtime, messages);
    }
    assert!(!a.answering.on);
    assert_eq!(a.toast.as_deref(), Some("stopped answering"));
}

#[test]
fn answering_without_a_listener_says_what_it_needs() {
    let mut runtime = shipped_runtime();
    let mut a = app();
    choose_action(&mut a, &mut runtime, Action::Answer);
    assert!(!a.answering.on);
    let toast = a.toast.clone().unwrap();
    assert!(toast.contains("nanotune listen --midi-in"), "{toast}");
    assert!(!text(&render(&a, 100, 30)).contains("waiting for a phrase"));
}
