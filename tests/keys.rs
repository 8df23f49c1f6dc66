//! Keys are commands (issue 30): a keymap rebinds what a key does and the help follows it;
//! `nanotune keys` prints the defaults as a `keys.toml` that reads back as them; the README's key
//! table is the one the keymap makes.

mod common;

use common::screen::{app, key, press, render, text};
use crossterm::event::KeyCode;
use nanotune::music::words::parse_words;
use nanotune::tui::app::{update, Effect, Piece};
use nanotune::tui::keys::Keymap;
use std::process::Command;

#[test]
fn a_keymap_moves_play_to_p_and_help_to_f1_and_the_help_shows_them() {
    let mut a = app();
    let (keys, problems) = Keymap::from_toml("play_stop = [\"p\"]\nhelp = [\"f1\"]\n");
    assert!(problems.is_empty(), "{problems:?}");
    a.keys = keys;
    a.show_only(Piece {
        words: parse_words("START n60 d4 sepxx d4 n64 d4 END").0,
        prompt_len: 1,
        title: None,
    });
    assert!(
        press(&mut a, &[KeyCode::Char(' ')]).is_empty(),
        "space is free"
    );
    assert!(a.playing.is_none());
    assert!(matches!(
        &press(&mut a, &[KeyCode::Char('p')])[..],
        [Effect::Play { .. }]
    ));
    assert_eq!(press(&mut a, &[KeyCode::Char('p')]), vec![Effect::Stop]);

    // `?` does nothing now; F1 opens the help, which lists the keys as bound, and closes it.
    press(&mut a, &[KeyCode::Char('?')]);
    assert!(!a.help_open);
    assert!(text(&render(&a, 80, 24)).contains(" f1 help "));
    update(&mut a, key(KeyCode::F(1)));
    assert!(a.help_open);
    let screen = text(&render(&a, 80, 24));
    let play = screen
        .lines()
        .find(|l| l.contains("play / stop"))
        .unwrap_or_else(|| panic!("no play row:\n{screen}"));
    assert!(play.contains(" p / a  play / stop"), "{screen}");
    assert!(!screen.contains("space"), "{screen}");
    assert!(screen.contains(" f1  this help"), "{screen}");
    update(&mut a, key(KeyCode::F(1)));
    assert!(!a.help_open && !a.quit);
}

#[test]
fn the_whole_help_fits_80x24() {
    let mut a = app();
    press(&mut a, &[KeyCode::Char('?')]);
    let screen = text(&render(&a, 80, 24));
    for row in [
        "enter  generate with the selected action",
        "left h H / right l L  change the selected control",
        "t T 1 2 3 4 5 6 7 8  one take more / fewer",
        "q  quit",
        "wheel  scroll the roll",
    ] {
        assert!(screen.contains(row), "{row:?} in\n{screen}");
    }
}

#[test]
fn nanotune_keys_prints_the_defaults_as_a_keys_toml() {
    let out = Command::new(env!("CARGO_BIN_EXE_nanotune"))
        .arg("keys")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("play_stop = [\"space\"]"), "{text}");
    assert_eq!(Keymap::from_toml(&text), (Keymap::defaults(), Vec::new()));
}

#[test]
fn the_readme_key_table_is_the_keymaps() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let (_, rest) = readme
        .split_once("<!-- keys:start -->\n")
        .expect("README.md has <!-- keys:start -->");
    let (table, _) = rest
        .split_once("<!-- keys:end -->")
        .expect("README.md has <!-- keys:end -->");
    assert_eq!(
        table,
        Keymap::defaults().markdown(),
        "README.md's key table is out of date: put `nanotune keys --markdown` between its markers"
    );
}
