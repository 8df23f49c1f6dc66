//! The screen's terminal loop: reads the settings and the keymap, opens the [`Runtime`] before
//! the screen (so nothing prints over it), then draws, reads keys and the mouse, feeds `update`,
//! hands its [`Effect`](super::app::Effect)s to the runtime and lets the [`Keeper`] write what
//! changed, until the user quits. The terminal is restored on every exit path, panics included.

use super::app::{update, App, Effect, Message};
use super::keys::{Command, Keymap};
use super::remember::{self, Keeper};
use super::runtime::{Options, Runtime};
use super::saved::{Settings, Store};
use super::view::view;
use crate::sample;
use anyhow::{Context, Result};
use crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event, KeyEventKind};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::ExecutableCommand;
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use std::collections::VecDeque;
use std::io::Stdout;
use std::path::PathBuf;
use std::time::{Duration, Instant};

type Term = Terminal<CrosstermBackend<Stdout>>;

/// Where the settings live and whether to read them.
#[derive(Clone, Debug, Default)]
pub struct Persist {
    /// `--config FILE`, else the standard place.
    pub config: Option<PathBuf>,
    /// `--reset`: start from the defaults (the file is replaced at the next change).
    pub reset: bool,
    /// `--soundfont [FILE]`: the voice to start with, over the one kept.
    pub soundfont: Option<Option<PathBuf>>,
}

/// The voice to start with: `--soundfont`, a set `$NANOTUNE_SOUNDFONT`, then the one kept;
/// `None` keeps the built-in voice.
fn start_voice(flag: Option<Option<PathBuf>>, kept: &Settings) -> Option<Option<PathBuf>> {
    flag.or_else(|| {
        std::env::var_os(crate::sound::soundfont::ENV_VAR)
            .filter(|v| !v.is_empty())
            .map(|_| None)
    })
    .or_else(|| (kept.voice.as_deref() == Some("soundfont")).then(|| kept.soundfont.clone()))
}

fn restore_terminal() {
    let _ = terminal::disable_raw_mode();
    let _ = std::io::stdout().execute(DisableMouseCapture);
    let _ = std::io::stdout().execute(LeaveAlternateScreen);
    let _ = std::io::stdout().execute(crossterm::cursor::Show);
}

/// Runs the screen until the user quits.
pub fn run(mut options: Options, persist: Persist) -> Result<()> {
    let store = Store::locate(persist.config.as_deref());
    let (mut kept, mut notes) = match (&store, persist.reset) {
        (Some(store), false) => {
            let (s, note) = store.load_settings();
            (s, note.into_iter().collect())
        }
        _ => (Settings::default(), Vec::new()),
    };
    let on_disk = kept.clone();
    let (checkpoint, data, note) = remember::folders(
        options.checkpoint.as_deref(),
        options.data.as_deref(),
        &mut kept,
    );
    (options.checkpoint, options.data) = (checkpoint, data);
    notes.extend(note);
    // Everything that may print (ALSA's complaints included) happens before the screen opens.
    let (mut runtime, env) = Runtime::open(options)?;
    let mut app = App::new(env, sample::random_seed());
    notes.extend(remember::apply(&mut app, &kept));
    // keys.toml is the user's own: read whatever --reset says.
    if let Some(store) = &store {
        let (keys, problems) = Keymap::load(&store.keys());
        app.keys = keys;
        notes.extend(problems);
    }
    if let Some(choice) = start_voice(persist.soundfont.clone(), &kept) {
        let mut answers = Vec::new();
        for message in runtime.carry_out(Effect::SetVoice(Some(choice))) {
            match message {
                Message::Toast(note) => notes.push(note),
                other => answers.push(other),
            }
        }
        deliver(&mut app, &mut runtime, answers);
    }
    if let Some(piece) = store
        .as_ref()
        .filter(|_| !persist.reset)
        .and_then(remember::last_piece)
    {
        app.show_only(piece);
        if notes.is_empty() {
            notes.push(match app.keys.keys_for(Command::PlayStop).first() {
                Some(play) => format!("last piece made: {play} plays it"),
                None => "last piece made".into(),
            });
        }
    }
    if store.is_none() {
        notes.push("no home folder: settings are not kept".into());
    }
    app.toast = (!notes.is_empty()).then(|| notes.join(" | "));
    runtime.set_volume(app.volume());
    // After --reset the file is left as it is until something changes.
    let on_disk = if persist.reset {
        remember::settings_of(&app)
    } else {
        on_disk
    };
    let mut keeper = store.map(|s| Keeper::new(s, on_disk, &app, Instant::now()));

    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous_hook(info);
    }));
    terminal::enable_raw_mode().context("this needs an interactive terminal")?;
    std::io::stdout().execute(EnterAlternateScreen)?;
    std::io::stdout().execute(EnableMouseCapture)?;
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    let size = term.size()?;
    deliver(
        &mut app,
        &mut runtime,
        vec![Message::Resize(size.width, size.height)],
    );
    let result = event_loop(&mut term, &mut app, &mut runtime, keeper.as_mut());
    if let Some(k) = keeper.as_mut() {
        k.flush(&app);
    }
    restore_terminal();
    result
}

/// Updates the app with each message in turn and carries out every effect, the effects of the
/// messages those effects answer with included, until the queue is empty.
pub fn deliver(app: &mut App, runtime: &mut Runtime, messages: Vec<Message>) {
    let mut queue = VecDeque::from(messages);
    while let Some(message) = queue.pop_front() {
        for effect in update(app, message) {
            queue.extend(runtime.carry_out(effect));
        }
    }
}

fn event_loop(
    term: &mut Term,
    app: &mut App,
    runtime: &mut Runtime,
    mut keeper: Option<&mut Keeper>,
) -> Result<()> {
    while !app.quit {
        term.draw(|f| view(app, f))?;
        let mut messages = Vec::new();
        if event::poll(Duration::from_millis(30))? {
            // Take every queued event before drawing again, so typing never waits on a frame.
            loop {
                match event::read()? {
                    Event::Key(k) if k.kind != KeyEventKind::Release => {
                        messages.push(Message::Key(k))
                    }
                    Event::Mouse(m) => messages.push(Message::Mouse(m, Instant::now())),
                    Event::Resize(w, h) => messages.push(Message::Resize(w, h)),
                    _ => {}
                }
                if !event::poll(Duration::ZERO)? {
                    break;
                }
            }
        }
        messages.extend(runtime.poll(app.playing.is_some()));
        if let Some(error) = keeper.as_mut().and_then(|k| k.observe(app, Instant::now())) {
            messages.push(Message::Toast(error));
        }
        deliver(app, runtime, messages);
    }
    Ok(())
}
