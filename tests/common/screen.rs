//! The screen without a terminal: an app, keys through `update`, frames drawn into ratatui's
//! TestBackend and read back as text.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use nanotune::tui::app::{update, App, Effect, Environment, Message};
use nanotune::tui::view::view;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;

/// A fresh screen on the CPU, seed 42, where pieces wait for space to play (these tests are
/// about what comes after; `tests/tui_stream.rs` plays them while they are made).
pub fn app() -> App {
    let mut app = App::new(
        Environment {
            device: "cpu".into(),
            ..Environment::default()
        },
        42,
    );
    app.play_while_made = false;
    app
}

pub fn key(code: KeyCode) -> Message {
    Message::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub fn press(app: &mut App, keys: &[KeyCode]) -> Vec<Effect> {
    keys.iter().flat_map(|&k| update(app, key(k))).collect()
}

pub fn render(app: &App, w: u16, h: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| view(app, f)).unwrap();
    terminal.backend().buffer().clone()
}

pub fn text(buf: &Buffer) -> String {
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

/// A runtime on the shipped model, on the CPU, without sound or a dataset.
pub fn shipped_runtime() -> nanotune::tui::runtime::Runtime {
    shipped_runtime_to(nanotune::sound::output::Output::Silent("test".into()))
}

/// Carries out `effects` and feeds the runtime's messages back until the generation ends (at
/// most two minutes), as the run loop does.
pub fn drive(a: &mut App, runtime: &mut nanotune::tui::runtime::Runtime, effects: Vec<Effect>) {
    use std::time::{Duration, Instant};
    for effect in effects {
        for msg in runtime.carry_out(effect) {
            update(a, msg);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while a.is_generating() {
        for msg in runtime.poll(false) {
            update(a, msg);
        }
        assert!(Instant::now() < deadline, "the generation never ended");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The shipped model on the CPU, with sound going to `output` (a listener, say).
pub fn shipped_runtime_to(
    output: nanotune::sound::output::Output,
) -> nanotune::tui::runtime::Runtime {
    use nanotune::learn::checkpoint::locate;
    use nanotune::learn::device::Compute;
    use nanotune::sample::backend::{load_for, Weights};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = locate(Some(&root.join("checkpoints"))).unwrap();
    let (model, _) = load_for(&dir, &Compute::cpu(), Weights::default()).unwrap();
    nanotune::tui::runtime::Runtime::new(
        Some(model),
        output,
        None,
        nanotune::tui::runtime::Options::default(),
    )
}

/// Runs the screen's loop without a terminal (the runtime's messages delivered, every effect
/// carried out, as `run` does) until `done` holds, at most `limit`.
pub fn run_until(
    a: &mut App,
    runtime: &mut nanotune::tui::runtime::Runtime,
    limit: std::time::Duration,
    done: impl Fn(&App) -> bool,
) {
    use nanotune::tui::run::deliver;
    let deadline = std::time::Instant::now() + limit;
    while !done(a) {
        let messages = runtime.poll(a.playing.is_some());
        deliver(a, runtime, messages);
        assert!(
            std::time::Instant::now() < deadline,
            "not done within {limit:?}: {:?}, toast {:?}",
            a.gen,
            a.toast
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Presses `keys` and carries out what they ask, as the run loop does.
pub fn keys_in(a: &mut App, runtime: &mut nanotune::tui::runtime::Runtime, keys: &[KeyCode]) {
    for effect in press(a, keys) {
        let messages = runtime.carry_out(effect);
        nanotune::tui::run::deliver(a, runtime, messages);
    }
}

/// Chooses `action` from the menu (Enter on it), carrying out what it asks.
pub fn choose_action(
    a: &mut App,
    runtime: &mut nanotune::tui::runtime::Runtime,
    action: nanotune::tui::app::Action,
) {
    a.focus = nanotune::tui::app::Focus::Menu;
    a.selected_action = nanotune::tui::app::Action::ALL
        .iter()
        .position(|&x| x == action)
        .expect("the menu has every action");
    keys_in(a, runtime, &[KeyCode::Enter]);
}
