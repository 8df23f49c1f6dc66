//! The screen a musician keeps open (issue 24): the 80x24 layout, Length in bars and the scale
//! lock on the screen, the mouse through `update`, `?` closed by `q`, settings and the last piece
//! kept, and Continue song from the openings shipped beside the model. Frames are drawn on
//! ratatui's `TestBackend` and read back.

mod common;

use common::screen::{app, press, render, text};
use crossterm::event::{KeyCode, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use nanotune::music::notes::from_words;
use nanotune::music::scale::Scale;
use nanotune::music::words::parse_words;
use nanotune::music::words::Titled;

use common::recorder::Recorder;
use nanotune::sound::output::Output;
use nanotune::tui::app::{
    update, Action, App, ControlId, Effect, Focus, GenState, Message, PromptSource,
};
use nanotune::tui::layout::Areas;
use nanotune::tui::mouse::DOUBLE_CLICK;
use nanotune::tui::remember::{self, Keeper, SETTLE};
use nanotune::tui::runtime::{Options, Runtime};
use nanotune::tui::saved::Store;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use std::path::Path;
use std::time::{Duration, Instant};

fn row(buf: &Buffer, y: u16) -> String {
    (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect()
}

fn run_generation(app: &mut App, prompt: &str, new: &str) {
    update(
        app,
        Message::Started(Titled {
            words: parse_words(prompt).0,
            title: None,
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

fn mouse(kind: MouseEventKind, x: u16, y: u16, modifiers: KeyModifiers) -> MouseEvent {
    MouseEvent {
        kind,
        column: x,
        row: y,
        modifiers,
    }
}

fn click(app: &mut App, x: u16, y: u16, at: Instant) -> Vec<Effect> {
    let down = mouse(
        MouseEventKind::Down(MouseButton::Left),
        x,
        y,
        KeyModifiers::NONE,
    );
    let mut effects = update(app, Message::Mouse(down, at));
    let up = mouse(
        MouseEventKind::Up(MouseButton::Left),
        x,
        y,
        KeyModifiers::NONE,
    );
    effects.extend(update(app, Message::Mouse(up, at)));
    effects
}

fn select_control(app: &mut App, id: ControlId) {
    app.focus = Focus::Controls;
    app.selected_control = id;
}

#[test]
fn at_80x24_the_roll_has_most_of_the_width_and_everything_is_on_screen() {
    let mut a = app();
    press(&mut a, &[KeyCode::Enter]);
    run_generation(&mut a, "START", "n72 d4 n64 d4 n60 d4 END");
    for (w, h) in [(80u16, 24u16), (72, 22)] {
        let buf = render(&a, w, h);
        let screen = text(&buf);
        // The roll's box: its top-left corner is the second box corner on the top row.
        let top = row(&buf, 1);
        let corners: Vec<usize> = top
            .chars()
            .enumerate()
            .filter(|&(_, c)| c == '┌')
            .map(|(i, _)| i)
            .collect();
        let roll_x = corners[1] as u16;
        assert!(top[..].contains("Piano roll"), "{screen}");
        if w == 80 {
            assert!(
                (w - roll_x) * 10 >= w * 6,
                "roll {} of {w} columns:\n{screen}",
                w - roll_x
            );
        }
        // Every control is on screen, or comes on it when selected (they scroll at 24 rows).
        for control in ControlId::ALL {
            let name = a.controls[control].name;
            let mut b = a.clone();
            b.selected_control = control;
            let screen = text(&render(&b, w, h));
            assert!(
                screen.contains(name),
                "{name} missing at {w}x{h}:\n{screen}"
            );
        }
        for action in Action::ALL {
            assert!(
                screen.contains(action.label()),
                "{} missing at {w}x{h}:\n{screen}",
                action.label()
            );
        }
        assert!(screen.contains("Generation complete!"), "{screen}");
        // The chord is drawn in the roll.
        assert!(screen.contains('▀') || screen.contains('▄') || screen.contains('█'));
    }
    // Larger terminals keep the wide panel, ranges included.
    let screen = text(&render(&a, 120, 30));
    assert!(screen.contains("0.90 0.05..2.00"), "{screen}");
}

#[test]
fn length_in_bars_is_asked_for_shown_and_measured() {
    let mut a = app();
    let screen = text(&render(&a, 80, 24));
    assert!(screen.contains("Length      ░░░░░░░░   off"), "{screen}");
    assert!(screen.contains("500 words ≈"), "{screen}");
    press(&mut a, &[KeyCode::Tab, KeyCode::Down, KeyCode::Down]);
    assert_eq!(a.selected_control, ControlId::Length);
    press(&mut a, &[KeyCode::Right; 8]);
    let screen = text(&render(&a, 80, 24));
    assert!(screen.contains("8 bars"), "{screen}");
    // 8 bars of 4/4 at 120 bpm: 16 s.
    assert!(screen.contains("8 bars = 16 s"), "{screen}");
    let effects = press(&mut a, &[KeyCode::Tab, KeyCode::Enter]);
    match &effects[..] {
        [Effect::Generate { options, .. }] => assert_eq!(options.bars, Some(8)),
        other => panic!("{other:?}"),
    }
    update(
        &mut a,
        Message::Started(Titled {
            words: parse_words("START").0,
            title: None,
        }),
    );
    // Two bars made of eight: a whole-bar note twice.
    for w in parse_words("n60 d16 sepxx d16 n64 d16 sepxx d16").0 {
        update(&mut a, Message::Word { take: 0, word: w });
    }
    update(&mut a, Message::Tick(Duration::from_millis(200)));
    let screen = text(&render(&a, 80, 24));
    assert!(screen.contains("generating 2.0/8 bars"), "{screen}");
    update(
        &mut a,
        Message::Finished {
            cancelled: false,
            elapsed: Duration::from_secs(1),
            error: None,
            words: None,
        },
    );
    let screen = text(&render(&a, 120, 30));
    assert!(
        screen.contains("4.0 s of music, took 1.0 s; 2.0 bars"),
        "{screen}"
    );
    // Back to off: by tokens.
    select_control(&mut a, ControlId::Length);
    press(&mut a, &[KeyCode::Char('['); 3]);
    assert_eq!(a.options().bars, None);
}

#[test]
fn the_scale_control_locks_a_key_or_matches_the_prompt() {
    let mut a = app();
    select_control(&mut a, ControlId::Scale);
    let options = |a: &mut App| -> (Option<Scale>, bool) {
        a.focus = Focus::Menu;
        let effects = press(a, &[KeyCode::Enter]);
        let got = match &effects[..] {
            [Effect::Generate {
                options,
                scale_from_prompt,
                ..
            }] => (options.scale, *scale_from_prompt),
            other => panic!("{other:?}"),
        };
        run_generation(a, "START", "n60 d4 END");
        a.focus = Focus::Controls;
        got
    };
    assert_eq!(options(&mut a), (None, false));
    press(&mut a, &[KeyCode::Right]);
    assert!(text(&render(&a, 80, 24)).contains("Scale       match prompt"));
    assert_eq!(options(&mut a), (None, true));
    press(&mut a, &[KeyCode::Right]);
    assert_eq!(options(&mut a), (Some(Scale::major(0)), false));
    // The big step moves by a tonic: C major to C# major.
    press(&mut a, &[KeyCode::Char(']')]);
    assert!(text(&render(&a, 80, 24)).contains("C# major"));
    assert_eq!(options(&mut a), (Some(Scale::major(1)), false));
}

#[test]
fn question_mark_help_is_closed_by_q_without_quitting() {
    let mut a = app();
    press(&mut a, &[KeyCode::Char('?')]);
    let screen = text(&render(&a, 80, 24));
    assert!(screen.contains("Keys (Esc or q closes)"), "{screen}");
    assert!(screen.contains("run a menu item"), "{screen}");
    assert!(press(&mut a, &[KeyCode::Char('q')]).is_empty());
    assert!(!a.help_open && !a.quit);
    assert!(!text(&render(&a, 80, 24)).contains("Keys (Esc"));
    // Outside the help, q quits.
    assert!(press(&mut a, &[KeyCode::Char('q')]).contains(&Effect::Quit));
}

#[test]
fn clicks_select_double_clicks_run_and_gauges_follow_the_mouse() {
    let mut a = app();
    update(&mut a, Message::Resize(80, 24));
    let areas = Areas::of(Rect::new(0, 0, 80, 24)).unwrap();
    let t0 = Instant::now();
    let menu_row = |i: u16| areas.menu.y + 1 + i;
    // One click on Continue file selects it; nothing runs.
    assert!(click(&mut a, areas.menu.x + 3, menu_row(3), t0).is_empty());
    assert_eq!((a.selected_action, a.focus), (3, Focus::Menu));
    // Two clicks on New piece far apart: selected, not run; then a double click runs it.
    assert!(click(&mut a, areas.menu.x + 3, menu_row(0), t0).is_empty());
    let late = t0 + DOUBLE_CLICK * 3;
    assert!(click(&mut a, areas.menu.x + 3, menu_row(0), late).is_empty());
    let effects = click(
        &mut a,
        areas.menu.x + 3,
        menu_row(0),
        late + Duration::from_millis(150),
    );
    assert!(
        matches!(
            &effects[..],
            [Effect::Generate {
                prompt: PromptSource::New,
                ..
            }]
        ),
        "{effects:?}"
    );
    run_generation(&mut a, "START", "n60 d32 sepxx d32 n64 d32 END");

    // The gauge: its first column is the minimum, its last the maximum; a drag follows.
    let y = areas
        .control_row(ControlId::Temperature, a.selected_control)
        .unwrap();
    let (first, last) = (areas.gauge_x(), areas.gauge_x() + areas.gauge_width() - 1);
    click(&mut a, first, y, t0);
    assert_eq!(a.value(ControlId::Temperature), 0.05);
    assert_eq!(
        (a.focus, a.selected_control),
        (Focus::Controls, ControlId::Temperature)
    );
    let down = mouse(
        MouseEventKind::Down(MouseButton::Left),
        last,
        y,
        KeyModifiers::NONE,
    );
    update(&mut a, Message::Mouse(down, t0));
    assert_eq!(a.value(ControlId::Temperature), 2.0);
    let drag = mouse(
        MouseEventKind::Drag(MouseButton::Left),
        first + 3,
        y + 4,
        KeyModifiers::NONE,
    );
    update(&mut a, Message::Mouse(drag, t0));
    let mid = a.value(ControlId::Temperature);
    assert!(mid > 0.05 && mid < 2.0, "{mid}");
    let up = mouse(
        MouseEventKind::Up(MouseButton::Left),
        first + 3,
        y,
        KeyModifiers::NONE,
    );
    update(&mut a, Message::Mouse(up, t0));
    // After the button is up, a drag changes nothing.
    let drag = mouse(
        MouseEventKind::Drag(MouseButton::Left),
        last,
        y,
        KeyModifiers::NONE,
    );
    update(&mut a, Message::Mouse(drag, t0));
    assert_eq!(a.value(ControlId::Temperature), mid);
    // Volume by the mouse reaches the sound output as keys do.
    // Volume is shown once selected (the controls may scroll at this size).
    a.selected_control = ControlId::Volume;
    let volume = areas
        .control_row(ControlId::Volume, ControlId::Volume)
        .unwrap();
    let effects = click(&mut a, first, volume, t0);
    assert_eq!(effects, vec![Effect::SetVolume(0.0)]);
    // The wheel over a control steps it.
    a.selected_control = ControlId::Tokens;
    let wheel_up = mouse(
        MouseEventKind::ScrollUp,
        areas.controls.x + 2,
        areas
            .control_row(ControlId::Tokens, a.selected_control)
            .unwrap(),
        KeyModifiers::NONE,
    );
    update(&mut a, Message::Mouse(wheel_up, t0));
    assert_eq!(a.value(ControlId::Tokens), 550.0);
}

#[test]
fn the_roll_answers_the_wheel_and_a_click_moves_the_playhead_and_seeks() {
    let mut a = app();
    update(&mut a, Message::Resize(80, 24));
    let areas = Areas::of(Rect::new(0, 0, 80, 24)).unwrap();
    let notes = areas.roll_notes();
    let t0 = Instant::now();
    press(&mut a, &[KeyCode::Enter]);
    // Sixteen bars of whole-bar notes.
    let piece: String = (0..16)
        .map(|i| format!("n{} d16 sepxx d16 ", 60 + i % 5))
        .collect();
    run_generation(&mut a, "START", &format!("{piece}END"));
    let at = |x, y, kind, m| Message::Mouse(mouse(kind, x, y, m), t0);
    let (x, y) = (notes.x + 2, notes.y + 2);
    update(
        &mut a,
        at(x, y, MouseEventKind::ScrollDown, KeyModifiers::NONE),
    );
    assert_eq!(a.scroll, 16, "one bar later");
    update(
        &mut a,
        at(x, y, MouseEventKind::ScrollUp, KeyModifiers::NONE),
    );
    update(
        &mut a,
        at(x, y, MouseEventKind::ScrollUp, KeyModifiers::NONE),
    );
    assert_eq!(a.scroll, 0, "not before the start");
    update(
        &mut a,
        at(x, y, MouseEventKind::ScrollDown, KeyModifiers::SHIFT),
    );
    assert_eq!(a.zoom, 2, "Shift+wheel zooms out");
    update(
        &mut a,
        at(x, y, MouseEventKind::ScrollUp, KeyModifiers::CONTROL),
    );
    assert_eq!(a.zoom, 1, "Ctrl+wheel zooms in");

    // A click 16 columns in: step 16, 2 s at 120 bpm; the playhead is drawn there.
    assert!(click(&mut a, notes.x + 16, y, t0).is_empty());
    assert_eq!(a.play_from, 2.0);
    let buf = render(&a, 80, 24);
    let column: Vec<&str> = (notes.y..notes.bottom())
        .map(|yy| buf[(notes.x + 16, yy)].symbol())
        .collect();
    assert!(
        column.iter().filter(|s| **s == "│").count() > 10,
        "{column:?}"
    );
    // Space plays from there; a click while playing seeks.
    match &press(&mut a, &[KeyCode::Char(' ')])[..] {
        [Effect::Play { from, .. }] => assert_eq!(*from, 2.0),
        other => panic!("{other:?}"),
    }
    match &click(&mut a, notes.x + 40, y, t0)[..] {
        [Effect::Play { from, .. }] => assert_eq!(*from, 5.0),
        other => panic!("{other:?}"),
    }
    assert_eq!(a.playing, Some(5.0));
    // With the help open, a click closes it and does nothing else.
    press(&mut a, &[KeyCode::Char('?')]);
    assert!(click(&mut a, notes.x + 2, y, t0).is_empty());
    assert!(!a.help_open);
    assert_eq!(a.playing, Some(5.0));
}

#[test]
fn settings_and_the_last_piece_come_back_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::locate(Some(&dir.path().join("nanotune/settings.toml"))).unwrap();
    let t0 = Instant::now();
    let mut a = app();
    let mut keeper = Keeper::new(store.clone(), remember::settings_of(&a), &a, t0);
    // Temperature up twice, Length to 4 bars, Scale to D minor.
    press(&mut a, &[KeyCode::Tab, KeyCode::Right, KeyCode::Right]);
    keeper.observe(&a, t0);
    select_control(&mut a, ControlId::Length);
    press(&mut a, &[KeyCode::Char(']')]);
    a.controls[ControlId::Scale].value = 7.0; // off, match, C, Cm, C#, C#m, D, Dm
    keeper.observe(&a, t0 + Duration::from_millis(10));
    assert!(!store.settings.exists(), "not at every key");
    assert_eq!(keeper.observe(&a, t0 + SETTLE * 2), None);
    let written = std::fs::read_to_string(&store.settings).unwrap();
    assert!(written.contains("temperature = 1\n"), "{written}");
    assert!(written.contains("scale = \"D minor\""), "{written}");
    a.focus = Focus::Menu;
    press(&mut a, &[KeyCode::Enter]);
    run_generation(&mut a, "START n72 d4", "n64 d4 n60 d4 END");
    keeper.observe(&a, t0 + SETTLE * 3);

    // The next start: the same values, and the piece on screen.
    let mut b = app();
    let (settings, note) = store.load_settings();
    assert_eq!(note, None);
    assert_eq!(remember::apply(&mut b, &settings), None);
    b.show_only(remember::last_piece(&store).expect("the last piece was kept"));
    assert_eq!(b.piece(), a.piece());
    let screen = text(&render(&b, 80, 24));
    assert!(
        screen.contains("Temperature ████") && screen.contains(" 1.00"),
        "{screen}"
    );
    assert!(
        screen.contains("4 bars") && screen.contains("D minor"),
        "{screen}"
    );
    assert!(screen.contains('▀') || screen.contains('▄') || screen.contains('█'));

    // A damaged file: defaults, and one line for the status bar.
    std::fs::write(&store.settings, "temperature = = 2").unwrap();
    let (settings, note) = store.load_settings();
    let mut c = app();
    remember::apply(&mut c, &settings);
    c.toast = note;
    let screen = text(&render(&c, 120, 30));
    assert!(screen.contains("could not be read"), "{screen}");
    assert_eq!(c.value(ControlId::Temperature), 0.9);
}

/// Continue song with no dataset anywhere: the runtime finds the openings shipped beside the
/// model, says so, and continues one of them.
#[test]
fn continue_song_uses_the_openings_beside_the_shipped_model() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // No prepared dataset where the runtime looks, whatever this checkout holds in data/.
    let empty = tempfile::tempdir().unwrap();
    let options = Options {
        checkpoint: Some(root.join("checkpoints")),
        data: None,
        device: "cpu".parse().unwrap(),
        prepared: empty.path().join("prepared"),
        ..Options::default()
    };
    let (mut runtime, env) = Runtime::open(options).unwrap();
    assert_eq!(env.dataset_error, None);
    let songs = env.songs.clone().unwrap();
    assert!(songs.contains("openings of 553 pieces"), "{songs}");
    let mut a = App::new(env, 5);
    assert!(text(&render(&a, 80, 24)).contains("openings of 553 pieces"));
    a.controls[ControlId::Tokens].value = 50.0;
    // Match the prompt's key: the runtime finds it and says which.
    a.controls[ControlId::Scale].value = 1.0;
    a.selected_action = 1;
    for effect in press(&mut a, &[KeyCode::Enter]) {
        for msg in runtime.carry_out(effect) {
            update(&mut a, msg);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while a.is_generating() {
        for msg in runtime.poll(false) {
            update(&mut a, msg);
        }
        assert!(Instant::now() < deadline, "the generation never ended");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        matches!(a.gen, GenState::Complete { tokens, .. } if tokens >= 50),
        "{:?}",
        a.gen
    );
    let title = a.piece().title.clone().expect("a song's title");
    assert!(!title.is_empty());
    assert!(a.piece().prompt_len > 1);
    let toast = a.toast.clone().unwrap_or_default();
    assert!(toast.starts_with("scale lock "), "{toast}");
    let key: Scale = toast["scale lock ".len()..]
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let all = from_words(&a.piece().words).notes;
    let prompt = from_words(&a.piece().words[..a.piece().prompt_len])
        .notes
        .len();
    let new = &all[prompt.min(all.len())..];
    let held = new.iter().filter(|n| key.contains(n.pitch)).count();
    assert!(
        !new.is_empty() && held * 10 >= new.len() * 9,
        "{held} of {} in {key}",
        new.len()
    );
}

/// A click on the roll while playing: the sound output gets the piece from there, and the
/// playhead counts from there.
#[test]
fn a_seek_plays_the_piece_from_the_click_and_the_playhead_follows() {
    let (recorder, heard) = Recorder::new();
    let sound = Output::Other(Box::new(recorder));
    let mut runtime = Runtime::new(None, sound, None, Options::default());
    let mut a = app();
    update(&mut a, Message::Resize(80, 24));
    let notes = Areas::of(Rect::new(0, 0, 80, 24)).unwrap().roll_notes();
    press(&mut a, &[KeyCode::Enter]);
    // 120 bpm, 1/8 s a step: C4 for 4 s, then G4 for 1 s.
    run_generation(&mut a, "START", "n60 d32 sepxx d32 n67 d8 END");
    let mut carry = |a: &mut App, effects: Vec<Effect>| {
        for effect in effects {
            for msg in runtime.carry_out(effect) {
                update(a, msg);
            }
        }
        for msg in runtime.poll(a.playing.is_some()) {
            update(a, msg);
        }
    };
    let effects = press(&mut a, &[KeyCode::Char(' ')]);
    carry(&mut a, effects);
    // Step 24 is 3 s: C4's last second, then G4.
    let effects = click(&mut a, notes.x + 24, notes.y + 1, Instant::now());
    carry(&mut a, effects);
    let played: Vec<(u8, f64, f64)> = heard.lock().unwrap().played[1]
        .iter()
        .map(|n| (n.pitch, n.start, n.duration))
        .collect();
    assert_eq!(played, [(60, 0.0, 1.0), (67, 1.0, 1.0)]);
    // Half a second after the seek to 3 s.
    heard.lock().unwrap().position = Some(3.5);
    carry(&mut a, Vec::new());
    assert_eq!(a.playing, Some(3.5));
    assert!(text(&render(&a, 80, 24)).contains("playing 3.5/5.0 s"));
}
