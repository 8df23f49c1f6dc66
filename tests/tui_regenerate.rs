//! Regenerating bars on the screen (issue 32, item 1): bars selected by keys and by a drag on the
//! roll, numbered on the roll's ruler and marked; `r` refills them on the shipped model as Takes
//! fills, every note outside them kept; 1-3 audition the fills; Undo puts the old bars back.
//! Frames are drawn on ratatui's `TestBackend`.

mod common;

use common::screen::{app, drive, press, render, shipped_runtime, text};
use crossterm::event::{KeyCode, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use nanotune::learn::dataset::Dataset;
use nanotune::music::notes::{from_words, Note};
use nanotune::music::words::{Vocab, Word};
use nanotune::sample::infill::Bars;
use nanotune::tui::app::{update, App, Effect, GenState, Message, Piece};
use nanotune::tui::layout::Areas;
use nanotune::tui::roll::SELECTION_COLOR;
use nanotune::tui::view::status_text;
use ratatui::layout::Rect;
use std::path::Path;
use std::time::Instant;

/// A real piece with music in each of its first 12 bars' thirds: from the openings shipped
/// beside the model (corpus pieces).
fn real_piece() -> Vec<Word> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let openings = Dataset::load(&root.join("checkpoints/small/openings")).unwrap();
    (0..openings.val.pieces.len())
        .map(|i| Vocab.decode(openings.val.piece(i)).0)
        .find(|w| {
            let notes = from_words(w).notes;
            [0..64, 64..128, 128..192]
                .iter()
                .all(|r| notes.iter().any(|n| r.contains(&n.onset)))
        })
        .expect("an opening with 12 bars of music")
}

fn notes_outside(words: &[Word], bars: Bars) -> Vec<Note> {
    let span = bars.steps();
    let notes = from_words(words).notes;
    notes
        .into_iter()
        .filter(|n| !span.contains(&n.onset))
        .collect()
}

fn mouse(a: &mut App, kind: MouseEventKind, x: u16, y: u16) {
    let event = MouseEvent {
        kind,
        column: x,
        row: y,
        modifiers: KeyModifiers::NONE,
    };
    update(a, Message::Mouse(event, Instant::now()));
}

#[test]
fn bars_selected_by_keys_are_regenerated_in_takes_and_undone() {
    let mut runtime = shipped_runtime();
    let mut a = app();
    let original = real_piece();
    a.show_only(Piece {
        prompt_len: original.len(),
        words: original.clone(),
        title: Some("an opening".into()),
    });
    assert!(press(&mut a, &[KeyCode::Char('r')]).is_empty());
    assert!(
        a.toast.as_deref().unwrap().contains("select bars first"),
        "{:?}",
        a.toast
    );

    // The roll starts at bar 5: `b` selects it, three more `b` bars 6 to 8.
    a.scroll = 64;
    press(&mut a, &[KeyCode::Char('b'); 4]);
    let bars = Bars { first: 5, last: 8 };
    assert_eq!(a.selection, Some(bars));
    assert!(
        status_text(&a).contains("bars 5-8 selected"),
        "{}",
        status_text(&a)
    );
    press(&mut a, &[KeyCode::Char('B')]);
    assert_eq!(a.selection, Some(Bars { first: 5, last: 7 }));
    press(&mut a, &[KeyCode::Char('b')]);

    // The ruler numbers the bars from 5, and the selection is marked behind them.
    update(&mut a, Message::Resize(120, 36));
    let buf = render(&a, 120, 36);
    let roll = Areas::of(Rect::new(0, 0, 120, 36)).unwrap().roll_notes();
    let ruler: String = (roll.x..roll.right())
        .map(|x| buf[(x, roll.y)].symbol())
        .collect();
    assert!(ruler.starts_with('5') && ruler.contains(" 6"), "{ruler:?}");
    // Four bars at zoom 1 are 64 columns, all marked; the column after them is not.
    assert!((roll.x..roll.x + 64).all(|x| buf[(x, roll.y)].bg == SELECTION_COLOR));
    assert_ne!(buf[(roll.x + 64, roll.y)].bg, SELECTION_COLOR);

    // Three takes: `r` runs them as fills, ranked.
    press(&mut a, &[KeyCode::Char('t'); 2]);
    let effects = press(&mut a, &[KeyCode::Char('r')]);
    assert!(
        matches!(&effects[..], [Effect::Regenerate { bars: b, takes: 3, .. }] if *b == bars),
        "{effects:?}"
    );
    assert!(text(&render(&a, 120, 36)).contains("regenerating bars 5-8"));
    drive(&mut a, &mut runtime, effects);
    assert!(
        matches!(a.gen, GenState::Complete { regenerated: Some(b), .. } if b == bars),
        "{:?}",
        a.gen
    );
    let screen = text(&render(&a, 120, 36));
    assert!(
        screen.contains("Regenerated bars 5-8: 3 fills best first"),
        "{screen}"
    );
    assert_eq!(a.piece().title.as_deref(), Some("an opening"));
    let mut fills = Vec::new();
    for k in 0..3u8 {
        press(&mut a, &[KeyCode::Char(char::from(b'1' + k))]);
        assert_eq!(
            notes_outside(&a.piece().words, bars),
            notes_outside(&original, bars)
        );
        fills.push(a.piece().words.clone());
    }
    fills.dedup();
    assert_eq!(fills.len(), 3, "three different fills");
    assert!(fills.iter().all(|f| *f != original));

    press(&mut a, &[KeyCode::Char('u')]);
    assert_eq!(a.piece().words, original);
    assert_eq!(a.takes.made(), 1);
    assert!(status_text(&a).contains("undid the last change"));
    // Esc clears the selection.
    press(&mut a, &[KeyCode::Esc]);
    assert_eq!(a.selection, None);
}

#[test]
fn a_drag_on_the_roll_selects_bars_and_a_click_alone_does_not() {
    let mut a = app();
    a.show_only(Piece {
        prompt_len: 1,
        words: real_piece(),
        title: None,
    });
    update(&mut a, Message::Resize(120, 36));
    let roll = Areas::of(Rect::new(0, 0, 120, 36)).unwrap().roll_notes();
    let y = roll.y + 5;
    // Bar 2 starts 16 columns in at zoom 1; bar 3 at 32. Each gesture: the button's event and
    // the column in the roll.
    let (down, drag, up) = (
        MouseEventKind::Down(MouseButton::Left),
        MouseEventKind::Drag(MouseButton::Left),
        MouseEventKind::Up(MouseButton::Left),
    );
    let gestures = |a: &mut App, moves: &[(MouseEventKind, u16)]| {
        for &(kind, col) in moves {
            mouse(a, kind, roll.x + col, y);
        }
    };
    gestures(&mut a, &[(down, 20), (up, 20)]);
    assert_eq!(a.selection, None, "a click moves the playhead only");
    gestures(&mut a, &[(down, 40), (drag, 30), (drag, 18), (up, 18)]);
    assert_eq!(a.selection, Some(Bars { first: 2, last: 3 }));
    // A later drag elsewhere leaves the earlier selection be until it moves.
    gestures(&mut a, &[(down, 66)]);
    assert_eq!(a.selection, Some(Bars { first: 2, last: 3 }));
    gestures(&mut a, &[(drag, 67)]);
    assert_eq!(a.selection, Some(Bars { first: 5, last: 5 }));
}
