//! The screen without a terminal: an app, keys through `update`, frames drawn into ratatui's
//! TestBackend and read back as text.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use nanotune::tui::app::{update, App, Effect, Environment, Message};
use nanotune::tui::view::view;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;

/// A fresh screen on the CPU, seed 42.
pub fn app() -> App {
    App::new(
        Environment {
            device: "cpu".into(),
            ..Environment::default()
        },
        42,
    )
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
