//! The steering knobs on the screen (issue 34, item 4): Range, Polyphony and Density as
//! controls beside Scale, shown at 80x24 when selected, sent with every generation (and with
//! regenerated bars), kept in the settings; a generation on the shipped model holds them.

mod common;

use common::screen::{app, drive, press, render, shipped_runtime, text};
use crossterm::event::KeyCode;
use nanotune::music::notes::from_words;
use nanotune::tui::app::{App, ControlId, Effect, GenState, Piece};
use nanotune::tui::remember::{apply, settings_of};
use nanotune::tui::saved::Settings;

/// Tab to the controls, then down to `id` from Temperature.
fn select(a: &mut App, id: ControlId) {
    a.selected_control = ControlId::Temperature;
    press(a, &[KeyCode::Down].repeat(id.position()));
    assert_eq!(a.selected_control, id);
}

#[test]
fn range_polyphony_and_density_are_set_shown_sent_and_kept() {
    let mut a = app();
    press(&mut a, &[KeyCode::Tab]);
    select(&mut a, ControlId::Range);
    let screen = text(&render(&a, 80, 24));
    assert!(screen.contains("Range       off"), "{screen}");
    // One step: the lowest two-octave window; an octave a large step (`]`) up from there.
    press(&mut a, &[KeyCode::Right]);
    assert_eq!(a.controls.shown(ControlId::Range), "C1-C3");
    press(&mut a, &[KeyCode::Char(']'), KeyCode::Char(']')]);
    assert_eq!(a.controls.shown(ControlId::Range), "C3-C5");
    select(&mut a, ControlId::Polyphony);
    press(&mut a, &[KeyCode::Right; 2]);
    select(&mut a, ControlId::Density);
    press(&mut a, &[KeyCode::Right; 3]);
    let screen = text(&render(&a, 80, 24));
    assert!(
        screen.contains("Density") && screen.contains("1.50"),
        "{screen}"
    );
    assert!(
        screen.contains("Polyphony") && screen.contains("  2"),
        "{screen}"
    );

    let o = a.options();
    assert_eq!(o.range.map(|r| r.to_string()).as_deref(), Some("C3-C5"));
    assert_eq!((o.polyphony, o.density), (Some(2), Some(1.5)));
    let effects = press(&mut a, &[KeyCode::Tab, KeyCode::Enter]);
    match &effects[..] {
        [Effect::Generate { options, .. }] => assert_eq!(*options, a.options()),
        other => panic!("{other:?}"),
    }

    // Kept in the settings file and read back by a fresh screen.
    let s = settings_of(&a);
    assert_eq!(s.range.as_deref(), Some("C3-C5"));
    assert_eq!((s.polyphony, s.density), (Some(2.0), Some(1.5)));
    let toml = toml::to_string(&s).unwrap();
    let back: Settings = toml::from_str(&toml).unwrap();
    let mut b = app();
    assert_eq!(apply(&mut b, &back), None);
    assert_eq!(b.options().range, a.options().range);
    assert_eq!(
        (b.options().polyphony, b.options().density),
        (Some(2), Some(1.5))
    );
    let mut c = app();
    let bad = Settings {
        range: Some("C9-banana".into()),
        ..Settings::default()
    };
    assert!(apply(&mut c, &bad)
        .unwrap()
        .contains("not a range of notes"));
    assert_eq!(c.options().range, None);
}

#[test]
fn a_generation_and_regenerated_bars_hold_the_knobs_on_the_shipped_model() {
    let mut runtime = shipped_runtime();
    let mut a = app();
    a.controls[ControlId::Range].value = 37.0; // C4-C6
    a.controls[ControlId::Polyphony].value = 2.0;
    a.controls[ControlId::Density].value = 2.0;
    a.controls[ControlId::Tokens].value = 300.0;
    let range = a.controls.range().unwrap();
    assert_eq!(range.to_string(), "C4-C6");
    let effects = press(&mut a, &[KeyCode::Enter]);
    drive(&mut a, &mut runtime, effects);
    assert!(matches!(a.gen, GenState::Complete { .. }), "{:?}", a.gen);
    let check = |words: &[nanotune::music::words::Word], from: u64| {
        let notes = from_words(words).notes;
        let new: Vec<_> = notes.iter().filter(|n| n.onset >= from).collect();
        assert!(new.len() > 10, "{} new notes", new.len());
        assert!(new.iter().all(|n| range.contains(n.pitch)));
        for n in &notes {
            let at_once = notes
                .iter()
                .filter(|m| m.onset <= n.onset && n.onset < m.onset + m.duration as u64)
                .count();
            assert!(at_once <= 2, "{at_once} notes at step {}", n.onset);
        }
    };
    check(&a.piece().words, 0);
    // Bars 3-4 of it again, with the same knobs.
    let piece = a.piece().words.clone();
    a.show_only(Piece {
        prompt_len: piece.len(),
        words: piece,
        title: None,
    });
    press(&mut a, &[KeyCode::Esc]);
    a.scroll = 32;
    press(&mut a, &[KeyCode::Char('b'), KeyCode::Char('b')]);
    let effects = press(&mut a, &[KeyCode::Char('r')]);
    match &effects[..] {
        [Effect::Regenerate { options, .. }] => {
            assert_eq!(options.polyphony, Some(2));
            assert_eq!(options.range, Some(range));
        }
        other => panic!("{other:?}"),
    }
    drive(&mut a, &mut runtime, effects);
    assert!(
        matches!(
            a.gen,
            GenState::Complete {
                regenerated: Some(_),
                ..
            }
        ),
        "{:?}",
        a.gen
    );
    check(&a.piece().words, 0);
}
