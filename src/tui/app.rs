//! The TUI's state and its `update`: everything that can happen is a [`Message`]; `update` changes
//! the [`App`] and returns [`Effect`]s for the runtime to carry out (start a generation, play,
//! save). No terminal, thread or model is touched here, so key sequences can be tested directly.

use crate::music::notes::{STEPS_PER_BAR, STEPS_PER_QUARTER};
use crate::music::words::{Vocab, Word};
use crate::sample::SampleOptions;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::path::PathBuf;
use std::time::Duration;

/// Grid steps per word in the seed corpus (4.43 M steps over 10 M words), used to show roughly
/// how long a requested number of words will play.
pub const STEPS_PER_WORD: f64 = 0.443;

/// One adjustable setting, drawn as a gauge.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Control {
    pub name: &'static str,
    pub value: f64,
    pub min: f64,
    pub max: f64,
    pub step: f64,
    pub big_step: f64,
}

impl Control {
    const fn new(name: &'static str, value: f64, min: f64, max: f64, step: f64, big: f64) -> Self {
        Control {
            name,
            value,
            min,
            max,
            step,
            big_step: big,
        }
    }

    fn nudge(&mut self, steps: f64) {
        let v = (self.value + steps).clamp(self.min, self.max);
        // Keep values on the step grid so 0.1 + 0.05 shows as 0.15, not 0.15000000000000002.
        self.value = ((v - self.min) / self.step).round() * self.step + self.min;
        self.value = self.value.clamp(self.min, self.max);
    }

    /// Position of the value within its range, 0..=1.
    pub fn ratio(&self) -> f64 {
        ((self.value - self.min) / (self.max - self.min)).clamp(0.0, 1.0)
    }
}

/// Indices of the controls, in screen order.
pub mod ctl {
    pub const TEMPERATURE: usize = 0;
    pub const TOKENS: usize = 1;
    pub const TOP_K: usize = 2;
    pub const TOP_P: usize = 3;
    pub const BPM: usize = 4;
    pub const VOLUME: usize = 5;
    pub const SEED: usize = 6;
}

/// The option menu, in screen order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    NewPiece,
    ContinueSong,
    Retry,
    ContinueFile,
    Extend,
    Undo,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::NewPiece,
        Action::ContinueSong,
        Action::Retry,
        Action::ContinueFile,
        Action::Extend,
        Action::Undo,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Action::NewPiece => "New piece",
            Action::ContinueSong => "Continue song",
            Action::Retry => "Retry",
            Action::ContinueFile => "Continue file",
            Action::Extend => "Extend",
            Action::Undo => "Undo last extension",
        }
    }
}

/// Where the prompt of a generation comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Prompt {
    /// `START`.
    New,
    /// The start of a random validation piece (the runtime picks it and reports the title).
    RandomSong,
    /// These exact words again (Retry), with the title they came from.
    Words {
        words: Vec<Word>,
        title: Option<String>,
    },
    /// The start of a MIDI file.
    File(PathBuf),
}

/// Sampling settings of one generation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    pub tokens: usize,
    pub temperature: f64,
    pub top_k: usize,
    pub top_p: f64,
    pub seed: u64,
}

/// What the runtime should do after an update.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    Generate {
        prompt: Prompt,
        settings: Settings,
    },
    Cancel,
    Play {
        words: Vec<Word>,
        bpm: f64,
        volume: f32,
    },
    Stop,
    SetVolume(f32),
    SaveMidi {
        words: Vec<Word>,
        bpm: f64,
    },
    SaveWav {
        words: Vec<Word>,
        bpm: f64,
    },
    Quit,
}

/// Everything that can happen.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    Key(KeyEvent),
    /// A generation began; its prompt is known (for Continue song, with the piece's title).
    Started {
        prompt: Vec<Word>,
        title: Option<String>,
    },
    /// One new word.
    Word(Word),
    /// The generation ended: finished, cancelled (keeping what was made), or failed.
    Finished {
        cancelled: bool,
        elapsed: Duration,
        error: Option<String>,
        /// The whole final piece (prompt and new words, ended), replacing what was streamed.
        words: Option<Vec<Word>>,
    },
    /// Time since the running generation started (sent with each frame while it runs).
    Tick(Duration),
    /// Playback position in seconds, or `None` when playback ended.
    PlayPosition(Option<f64>),
    /// A toast (file saved, an error from the runtime).
    Toast(String),
}

/// The piece on screen: prompt words then new words.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Piece {
    pub words: Vec<Word>,
    /// How many of `words` are prompt (drawn in another colour).
    pub prompt_len: usize,
    pub title: Option<String>,
}

/// The state of generation, shown by the progress gauge and the status line.
#[derive(Clone, Debug, PartialEq)]
pub enum GenState {
    Idle,
    Running {
        made: usize,
        total: usize,
        elapsed: Duration,
    },
    Complete {
        tokens: usize,
        music_seconds: f64,
        took: Duration,
        cancelled: bool,
    },
    Failed(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    Controls,
    Menu,
}

/// A text prompt on screen (the path for Continue file).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PathInput {
    pub text: String,
}

/// What the app knows of its surroundings when it starts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Environment {
    /// Why no model could be loaded, if none could.
    pub model_error: Option<String>,
    /// Why Continue song is unavailable (no prepared dataset), if it is.
    pub dataset_error: Option<String>,
    /// Why there is no sound (no audio device), if there is none.
    pub audio_error: Option<String>,
    /// Where the model runs, e.g. "cpu".
    pub device: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct App {
    pub env: Environment,
    pub controls: Vec<Control>,
    pub seed_locked: bool,
    pub selected_control: usize,
    pub selected_action: usize,
    pub focus: Focus,
    pub piece: Piece,
    /// Pieces before each extension, for Undo.
    pub history: Vec<Piece>,
    /// The prompt of the last Continue, for Retry.
    pub last_continue: Option<(Vec<Word>, Option<String>)>,
    /// The action whose generation is running or last ran.
    pub running_action: Option<Action>,
    pub gen: GenState,
    pub toast: Option<String>,
    pub help_open: bool,
    pub path_input: Option<PathInput>,
    /// Playback position in seconds while playing.
    pub playing: Option<f64>,
    /// First grid step shown by the roll, and steps per column (1 = finest).
    pub scroll: u64,
    pub zoom: u32,
    pub quit: bool,
}

impl App {
    pub fn new(env: Environment, seed: u64) -> App {
        let defaults = SampleOptions::default();
        // The f32 default read as f64 is 0.8999999...; the gauge steps on a grid of 0.05.
        let temperature = (f64::from(defaults.temperature) * 100.0).round() / 100.0;
        App {
            env,
            controls: vec![
                Control::new("Temperature", temperature, 0.05, 2.0, 0.05, 0.25),
                Control::new("Tokens", defaults.words as f64, 50.0, 4000.0, 50.0, 500.0),
                Control::new(
                    "Top-k",
                    defaults.top_k as f64,
                    1.0,
                    Vocab.len() as f64,
                    1.0,
                    10.0,
                ),
                Control::new("Top-p", f64::from(defaults.top_p), 0.05, 1.0, 0.05, 0.25),
                Control::new("BPM", 120.0, 40.0, 240.0, 1.0, 10.0),
                Control::new("Volume", 80.0, 0.0, 100.0, 5.0, 20.0),
                Control::new(
                    "Seed",
                    (seed % 1_000_000) as f64,
                    0.0,
                    999_999.0,
                    1.0,
                    1000.0,
                ),
            ],
            seed_locked: false,
            selected_control: 0,
            selected_action: 0,
            focus: Focus::Menu,
            piece: Piece::default(),
            history: Vec::new(),
            last_continue: None,
            running_action: None,
            gen: GenState::Idle,
            toast: None,
            help_open: false,
            path_input: None,
            playing: None,
            scroll: 0,
            zoom: 1,
            quit: false,
        }
    }

    pub fn value(&self, index: usize) -> f64 {
        self.controls[index].value
    }

    pub fn settings(&self) -> Settings {
        Settings {
            tokens: self.value(ctl::TOKENS) as usize,
            temperature: self.value(ctl::TEMPERATURE),
            top_k: self.value(ctl::TOP_K) as usize,
            top_p: self.value(ctl::TOP_P),
            seed: self.value(ctl::SEED) as u64,
        }
    }

    pub fn is_generating(&self) -> bool {
        matches!(self.gen, GenState::Running { .. })
    }

    /// Whether an action can be chosen now, and why not.
    pub fn unavailable(&self, action: Action) -> Option<String> {
        if let Some(e) = &self.env.model_error {
            if action != Action::Undo {
                return Some(e.clone());
            }
        }
        match action {
            Action::ContinueSong => self.env.dataset_error.clone(),
            Action::Retry if self.last_continue.is_none() => {
                Some("Retry repeats the last Continue: continue a song or a file first".into())
            }
            Action::Extend if self.piece.words.len() <= 1 => {
                Some("Extend goes on from the piece on screen: make one first".into())
            }
            Action::Undo if self.history.is_empty() => Some("nothing to undo".into()),
            _ => None,
        }
    }

    /// Seconds one grid step lasts at the chosen tempo.
    pub fn seconds_per_step(&self) -> f64 {
        60.0 / self.value(ctl::BPM) / STEPS_PER_QUARTER as f64
    }
}

fn key_steps(key: &KeyEvent) -> f64 {
    if key.modifiers.contains(KeyModifiers::SHIFT) {
        10.0
    } else {
        1.0
    }
}

/// Changes the app for one message; returns what the runtime must do.
pub fn update(app: &mut App, msg: Message) -> Vec<Effect> {
    match msg {
        Message::Key(key) => on_key(app, key),
        Message::Started { prompt, title } => {
            app.piece = Piece {
                prompt_len: prompt.len(),
                words: prompt,
                title,
            };
            if matches!(
                app.running_action,
                Some(Action::ContinueSong | Action::ContinueFile)
            ) {
                app.last_continue = Some((app.piece.words.clone(), app.piece.title.clone()));
            }
            Vec::new()
        }
        Message::Word(word) => {
            app.piece.words.push(word);
            if let GenState::Running { made, .. } = &mut app.gen {
                *made += 1;
            }
            Vec::new()
        }
        Message::Finished {
            cancelled,
            elapsed,
            error,
            words,
        } => {
            let mut made = match app.gen {
                GenState::Running { made, .. } => made,
                _ => 0,
            };
            if let Some(words) = words {
                made = words.len().saturating_sub(app.piece.prompt_len);
                app.piece.words = words;
            }
            app.gen = match error {
                Some(e) => GenState::Failed(e),
                None => GenState::Complete {
                    tokens: made,
                    music_seconds: music_seconds(app),
                    took: elapsed,
                    cancelled,
                },
            };
            Vec::new()
        }
        Message::Tick(since_start) => {
            if let GenState::Running { elapsed, .. } = &mut app.gen {
                *elapsed = since_start;
            }
            Vec::new()
        }
        Message::PlayPosition(pos) => {
            app.playing = pos;
            Vec::new()
        }
        Message::Toast(text) => {
            app.toast = Some(text);
            Vec::new()
        }
    }
}

/// Length of the piece on screen in seconds at the chosen tempo.
pub fn music_seconds(app: &App) -> f64 {
    crate::music::notes::from_words(&app.piece.words).end as f64 * app.seconds_per_step()
}

fn on_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && matches!(key.code, KeyCode::Char('c')) {
        app.quit = true;
        return vec![Effect::Cancel, Effect::Stop, Effect::Quit];
    }
    if let Some(input) = &mut app.path_input {
        match key.code {
            KeyCode::Esc => app.path_input = None,
            KeyCode::Enter => {
                let path = PathBuf::from(input.text.trim());
                app.path_input = None;
                return start(app, Action::ContinueFile, Prompt::File(path));
            }
            KeyCode::Backspace => {
                input.text.pop();
            }
            KeyCode::Char(c) => input.text.push(c),
            _ => {}
        }
        return Vec::new();
    }
    if app.help_open {
        if matches!(
            key.code,
            KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q')
        ) {
            app.help_open = false;
        }
        return Vec::new();
    }
    match key.code {
        KeyCode::Char('q') => {
            app.quit = true;
            vec![Effect::Cancel, Effect::Stop, Effect::Quit]
        }
        KeyCode::Char('?') => {
            app.help_open = true;
            Vec::new()
        }
        KeyCode::Esc => {
            if app.is_generating() {
                vec![Effect::Cancel]
            } else {
                app.toast = None;
                Vec::new()
            }
        }
        KeyCode::Tab | KeyCode::BackTab => {
            app.focus = match app.focus {
                Focus::Controls => Focus::Menu,
                Focus::Menu => Focus::Controls,
            };
            Vec::new()
        }
        KeyCode::Up | KeyCode::Char('k') => {
            move_selection(app, -1);
            Vec::new()
        }
        KeyCode::Down | KeyCode::Char('j') => {
            move_selection(app, 1);
            Vec::new()
        }
        KeyCode::Left | KeyCode::Char('h') | KeyCode::Char('H') => {
            change(app, -key_steps(&key), false)
        }
        KeyCode::Right | KeyCode::Char('l') | KeyCode::Char('L') => {
            change(app, key_steps(&key), false)
        }
        KeyCode::Char('[') => change(app, -1.0, true),
        KeyCode::Char(']') => change(app, 1.0, true),
        KeyCode::Char('x') => {
            app.seed_locked = !app.seed_locked;
            app.toast = Some(
                if app.seed_locked {
                    "seed locked"
                } else {
                    "seed unlocked"
                }
                .into(),
            );
            Vec::new()
        }
        KeyCode::Char('+') | KeyCode::Char('=') => {
            app.zoom = (app.zoom / 2).max(1);
            Vec::new()
        }
        KeyCode::Char('-') => {
            app.zoom = (app.zoom * 2).min(32);
            Vec::new()
        }
        KeyCode::Char('<') | KeyCode::Char(',') => {
            app.scroll = app.scroll.saturating_sub(STEPS_PER_BAR * app.zoom as u64);
            Vec::new()
        }
        KeyCode::Char('>') | KeyCode::Char('.') => {
            app.scroll += STEPS_PER_BAR * app.zoom as u64;
            Vec::new()
        }
        KeyCode::Enter => {
            let action = Action::ALL[app.selected_action];
            choose(app, action)
        }
        KeyCode::Char(' ') => toggle_play(app),
        KeyCode::Char('s') => save(app, false),
        KeyCode::Char('w') => save(app, true),
        KeyCode::Char('u') => choose(app, Action::Undo),
        _ => Vec::new(),
    }
}

fn move_selection(app: &mut App, by: isize) {
    let (index, len) = match app.focus {
        Focus::Controls => (&mut app.selected_control, app.controls.len()),
        Focus::Menu => (&mut app.selected_action, Action::ALL.len()),
    };
    *index = (*index as isize + by).rem_euclid(len as isize) as usize;
}

/// Left/right: on the controls, change the selected value (by its big step with shift or
/// `[`/`]`); on the menu, they do nothing but `[`/`]` still reach the selected control.
fn change(app: &mut App, steps: f64, big: bool) -> Vec<Effect> {
    if app.focus == Focus::Menu && !big {
        return Vec::new();
    }
    let index = app.selected_control;
    let control = &mut app.controls[index];
    let step = if big || steps.abs() > 1.0 {
        control.big_step
    } else {
        control.step
    };
    control.nudge(steps.signum() * step);
    if index == ctl::SEED {
        app.seed_locked = true;
    }
    if index == ctl::VOLUME {
        return vec![Effect::SetVolume(app.value(ctl::VOLUME) as f32 / 100.0)];
    }
    Vec::new()
}

/// Enter on a menu action.
fn choose(app: &mut App, action: Action) -> Vec<Effect> {
    if app.is_generating() {
        app.toast = Some("a generation is running: Esc cancels it".into());
        return Vec::new();
    }
    if let Some(why) = app.unavailable(action) {
        app.toast = Some(why);
        return Vec::new();
    }
    match action {
        Action::NewPiece => start(app, action, Prompt::New),
        Action::ContinueSong => start(app, action, Prompt::RandomSong),
        Action::Retry => {
            let (words, title) = app.last_continue.clone().expect("checked by unavailable");
            start(app, action, Prompt::Words { words, title })
        }
        Action::ContinueFile => {
            app.path_input = Some(PathInput::default());
            Vec::new()
        }
        Action::Extend => {
            app.history.push(app.piece.clone());
            let mut words = app.piece.words.clone();
            if words.last() == Some(&Word::End) {
                words.pop();
            }
            let title = app.piece.title.clone();
            start(app, action, Prompt::Words { words, title })
        }
        Action::Undo => {
            app.piece = app.history.pop().expect("checked by unavailable");
            app.gen = GenState::Idle;
            app.toast = Some("undid the last extension".into());
            Vec::new()
        }
    }
}

fn start(app: &mut App, action: Action, prompt: Prompt) -> Vec<Effect> {
    if !app.seed_locked {
        // A new seed for every generation unless the user fixed one; shown so it can be reused.
        let next = (app.value(ctl::SEED) as u64)
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
            >> 33;
        app.controls[ctl::SEED].value = (next % 1_000_000) as f64;
    }
    let settings = app.settings();
    app.running_action = Some(action);
    app.toast = None;
    app.scroll = 0;
    app.gen = GenState::Running {
        made: 0,
        total: settings.tokens,
        elapsed: Duration::ZERO,
    };
    let mut effects = Vec::new();
    if app.playing.is_some() {
        app.playing = None;
        effects.push(Effect::Stop);
    }
    effects.push(Effect::Generate { prompt, settings });
    effects
}

fn toggle_play(app: &mut App) -> Vec<Effect> {
    if app.playing.is_some() {
        app.playing = None;
        return vec![Effect::Stop];
    }
    if app.piece.words.len() <= 2 {
        app.toast = Some("nothing to play yet: Enter makes a piece".into());
        return Vec::new();
    }
    app.playing = Some(0.0);
    vec![Effect::Play {
        words: app.piece.words.clone(),
        bpm: app.value(ctl::BPM),
        volume: app.value(ctl::VOLUME) as f32 / 100.0,
    }]
}

fn save(app: &mut App, wav: bool) -> Vec<Effect> {
    if app.piece.words.len() <= 2 {
        app.toast = Some("nothing to save yet".into());
        return Vec::new();
    }
    let words = app.piece.words.clone();
    let bpm = app.value(ctl::BPM);
    vec![if wav {
        Effect::SaveWav { words, bpm }
    } else {
        Effect::SaveMidi { words, bpm }
    }]
}
