//! The screen's terminal loop: opens the [`Runtime`] before the screen (so nothing prints over
//! it), then draws, reads keys, feeds `update` and hands its [`Effect`](super::app::Effect)s to
//! the runtime until the user quits. The terminal is restored on every exit path, panics
//! included.

use super::app::{update, App, Message};
use super::runtime::{Options, Runtime};
use super::view::view;
use crate::sample;
use anyhow::{Context, Result};
use crossterm::event::{self, Event, KeyEventKind};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::ExecutableCommand;
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use std::io::Stdout;
use std::time::Duration;

type Term = Terminal<CrosstermBackend<Stdout>>;

fn restore_terminal() {
    let _ = terminal::disable_raw_mode();
    let _ = std::io::stdout().execute(LeaveAlternateScreen);
    let _ = std::io::stdout().execute(crossterm::cursor::Show);
}

/// Runs the screen until the user quits.
pub fn run(options: Options) -> Result<()> {
    // Everything that may print (ALSA's complaints included) happens before the screen opens.
    let (mut runtime, env) = Runtime::open(options)?;
    let mut app = App::new(env, sample::random_seed());
    runtime.set_volume(app.volume());

    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous_hook(info);
    }));
    terminal::enable_raw_mode().context("this needs an interactive terminal")?;
    std::io::stdout().execute(EnterAlternateScreen)?;
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    let result = event_loop(&mut term, &mut app, &mut runtime);
    restore_terminal();
    result
}

fn event_loop(term: &mut Term, app: &mut App, runtime: &mut Runtime) -> Result<()> {
    while !app.quit {
        term.draw(|f| view(app, f))?;
        let mut messages = Vec::new();
        if event::poll(Duration::from_millis(30))? {
            // Take every queued event before drawing again, so typing never waits on a frame.
            loop {
                if let Event::Key(k) = event::read()? {
                    if k.kind != KeyEventKind::Release {
                        messages.push(Message::Key(k));
                    }
                }
                if !event::poll(Duration::ZERO)? {
                    break;
                }
            }
        }
        messages.extend(runtime.poll(app.playing.is_some()));
        for msg in messages {
            for effect in update(app, msg) {
                for feedback in runtime.carry_out(effect) {
                    update(app, feedback);
                }
            }
        }
    }
    Ok(())
}
