//! The screen's voice: `v` asks for the other voice, the runtime loads a real General MIDI
//! SoundFont (or says why it cannot and keeps the built-in voice), the status line names it, and
//! the choice goes into the settings for the next start.

mod common;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use nanotune::sound::output::Output;
use nanotune::tui::app::{update, App, Effect, Environment, Message};
use nanotune::tui::remember;
use nanotune::tui::runtime::{Options, Runtime};
use nanotune::tui::view::status_text;
use std::path::PathBuf;

fn v(app: &mut App) -> Vec<Effect> {
    update(
        app,
        Message::Key(KeyEvent::new(KeyCode::Char('v'), KeyModifiers::NONE)),
    )
}

fn runtime() -> Runtime {
    Runtime::new(
        None,
        Output::Silent("test".into()),
        None,
        Options::default(),
    )
}

#[test]
fn v_loads_a_soundfont_names_it_and_keeps_it_in_the_settings() {
    let Some(font) = common::gm_soundfont() else {
        return;
    };
    let mut app = App::new(Environment::default(), 1);
    // Nothing used before: the first SoundFont found.
    assert_eq!(v(&mut app), vec![Effect::SetVoice(Some(None))]);
    let mut rt = runtime();
    let messages = rt.carry_out(Effect::SetVoice(Some(Some(font.clone()))));
    assert!(
        messages.contains(&Message::Voice(Some(font.clone()))),
        "{messages:?}"
    );
    for m in messages {
        update(&mut app, m);
    }
    assert_eq!(app.soundfont, Some(font.clone()));
    let status = status_text(&app);
    assert!(status.contains("voice: TimGM6mb.sf2"), "{status}");
    let kept = remember::settings_of(&app);
    assert_eq!(kept.voice.as_deref(), Some("soundfont"));
    assert_eq!(kept.soundfont, Some(font.clone()));

    // Again: back to the built-in voice, and the SoundFont stays remembered for next time.
    assert_eq!(v(&mut app), vec![Effect::SetVoice(None)]);
    for m in rt.carry_out(Effect::SetVoice(None)) {
        update(&mut app, m);
    }
    assert_eq!(app.soundfont, None);
    app.toast = None;
    assert!(
        !status_text(&app).contains("voice:"),
        "{}",
        status_text(&app)
    );
    let kept = remember::settings_of(&app);
    assert_eq!(kept.voice.as_deref(), Some("built-in"));
    assert_eq!(kept.soundfont, Some(font.clone()));
    assert_eq!(v(&mut app), vec![Effect::SetVoice(Some(Some(font)))]);
}

#[test]
fn a_bad_soundfont_leaves_the_built_in_voice_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("broken.sf2");
    std::fs::write(&fake, b"RIFF\x10\x00\x00\x00sfbkLIST").unwrap();
    let missing = PathBuf::from("/nowhere/piano.sf2");
    for file in [fake, missing] {
        let mut app = App::new(Environment::default(), 1);
        let messages = runtime().carry_out(Effect::SetVoice(Some(Some(file.clone()))));
        assert_eq!(messages[0], Message::Voice(None));
        let Message::Toast(why) = &messages[1] else {
            panic!("{messages:?}")
        };
        assert!(
            why.contains(&*file.to_string_lossy()) && why.ends_with("built-in voice"),
            "{why}"
        );
        for m in messages {
            update(&mut app, m);
        }
        assert_eq!(app.soundfont, None);
        assert!(status_text(&app).contains("built-in voice"));
    }
}
