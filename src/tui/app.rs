//! The TUI's state and its `update`: everything that can happen is a [`Message`]; `update` changes
//! the [`App`] and returns [`Effect`]s for the runtime to carry out (start a generation, play,
//! save). No terminal, thread or model is touched here, so key sequences can be tested directly.

use crate::music::notes::{STEPS_PER_BAR, STEPS_PER_QUARTER};
use crate::music::words::{Vocab, Word};
use crate::sample::{prompt, Prompt, SampleOptions};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::ops::{Index, IndexMut};
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

/// The controls, in screen order. A new control is a variant here, in [`ControlId::ALL`] and in
/// [`ControlId::initial`]; the screen draws and steps every control of `ALL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlId {
    Temperature,
    Tokens,
    TopK,
    TopP,
    Bpm,
    Volume,
    Seed,
}

impl ControlId {
    pub const ALL: [ControlId; 7] = [
        ControlId::Temperature,
        ControlId::Tokens,
        ControlId::TopK,
        ControlId::TopP,
        ControlId::Bpm,
        ControlId::Volume,
        ControlId::Seed,
    ];

    /// The control as the screen opens: the library's sampling defaults, and `seed`.
    fn initial(self, defaults: &SampleOptions, seed: u64) -> Control {
        match self {
            ControlId::Temperature => {
                // The f32 default read as f64 is 0.8999999...; the gauge steps on a grid of 0.05.
                let t = (f64::from(defaults.temperature) * 100.0).round() / 100.0;
                Control::new("Temperature", t, 0.05, 2.0, 0.05, 0.25)
            }
            ControlId::Tokens => {
                Control::new("Tokens", defaults.words as f64, 50.0, 4000.0, 50.0, 500.0)
            }
            ControlId::TopK => {
                let k = defaults.top_k as f64;
                Control::new("Top-k", k, 1.0, Vocab.len() as f64, 1.0, 10.0)
            }
            ControlId::TopP => {
                Control::new("Top-p", f64::from(defaults.top_p), 0.05, 1.0, 0.05, 0.25)
            }
            ControlId::Bpm => Control::new("BPM", 120.0, 40.0, 240.0, 1.0, 10.0),
            ControlId::Volume => Control::new("Volume", 80.0, 0.0, 100.0, 5.0, 20.0),
            ControlId::Seed => {
                let s = (seed % 1_000_000) as f64;
                Control::new("Seed", s, 0.0, 999_999.0, 1.0, 1000.0)
            }
        }
    }

    /// Where it is in [`ControlId::ALL`] (the variants are declared in that order).
    fn position(self) -> usize {
        self as usize
    }

    /// The control `by` places further down the screen, wrapping around.
    fn moved(self, by: isize) -> ControlId {
        let n = Self::ALL.len() as isize;
        Self::ALL[(self.position() as isize + by).rem_euclid(n) as usize]
    }
}

/// Every control's value and range, indexed by [`ControlId`].
#[derive(Clone, Debug, PartialEq)]
pub struct Controls([Control; ControlId::ALL.len()]);

impl Controls {
    fn new(defaults: &SampleOptions, seed: u64) -> Controls {
        Controls(ControlId::ALL.map(|id| id.initial(defaults, seed)))
    }

    /// Each control with its id, in screen order.
    pub fn iter(&self) -> impl Iterator<Item = (ControlId, &Control)> {
        ControlId::ALL.into_iter().zip(self.0.iter())
    }
}

impl Index<ControlId> for Controls {
    type Output = Control;
    fn index(&self, id: ControlId) -> &Control {
        &self.0[id.position()]
    }
}

impl IndexMut<ControlId> for Controls {
    fn index_mut(&mut self, id: ControlId) -> &mut Control {
        &mut self.0[id.position()]
    }
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

/// Where the prompt of a generation comes from. The runtime builds `New`, `RandomSong` and
/// `File` (it holds the dataset and reads the file); a `Given` prompt comes whole from the app.
#[derive(Clone, Debug, PartialEq)]
pub enum PromptSource {
    /// `START`.
    New,
    /// The start of a random validation piece (the runtime picks it and reports the title).
    RandomSong,
    /// This prompt as it is: the last Continue's again (Retry), or the piece on screen (Extend).
    Given(Prompt),
    /// The start of a MIDI file.
    File(PathBuf),
}

/// What the runtime should do after an update.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    Generate {
        prompt: PromptSource,
        options: SampleOptions,
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
    Started(Prompt),
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
    pub controls: Controls,
    pub seed_locked: bool,
    pub selected_control: ControlId,
    pub selected_action: usize,
    pub focus: Focus,
    pub piece: Piece,
    /// Pieces before each extension, for Undo.
    pub history: Vec<Piece>,
    /// The prompt of the last Continue, for Retry.
    pub last_continue: Option<Prompt>,
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
        App {
            env,
            controls: Controls::new(&SampleOptions::default(), seed),
            seed_locked: false,
            selected_control: ControlId::ALL[0],
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

    pub fn value(&self, id: ControlId) -> f64 {
        self.controls[id].value
    }

    /// The sampling options the controls show.
    pub fn options(&self) -> SampleOptions {
        SampleOptions {
            words: self.value(ControlId::Tokens) as usize,
            temperature: self.value(ControlId::Temperature) as f32,
            top_k: self.value(ControlId::TopK) as usize,
            top_p: self.value(ControlId::TopP) as f32,
            seed: self.value(ControlId::Seed) as u64,
            stop_at_end: false,
            scale: None,
            bars: None,
        }
    }

    /// The volume control as a gain, 0..=1.
    pub fn volume(&self) -> f32 {
        self.value(ControlId::Volume) as f32 / 100.0
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
        60.0 / self.value(ControlId::Bpm) / STEPS_PER_QUARTER as f64
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
        Message::Started(prompt) => {
            if matches!(
                app.running_action,
                Some(Action::ContinueSong | Action::ContinueFile)
            ) {
                app.last_continue = Some(prompt.clone());
            }
            app.piece = Piece {
                prompt_len: prompt.words.len(),
                words: prompt.words,
                title: prompt.title,
            };
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
                return start(app, Action::ContinueFile, PromptSource::File(path));
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
    match app.focus {
        Focus::Controls => app.selected_control = app.selected_control.moved(by),
        Focus::Menu => {
            let n = Action::ALL.len() as isize;
            app.selected_action = (app.selected_action as isize + by).rem_euclid(n) as usize;
        }
    }
}

/// Left/right: on the controls, change the selected value (by its big step with shift or
/// `[`/`]`); on the menu, they do nothing but `[`/`]` still reach the selected control.
fn change(app: &mut App, steps: f64, big: bool) -> Vec<Effect> {
    if app.focus == Focus::Menu && !big {
        return Vec::new();
    }
    let id = app.selected_control;
    let control = &mut app.controls[id];
    let step = if big || steps.abs() > 1.0 {
        control.big_step
    } else {
        control.step
    };
    control.nudge(steps.signum() * step);
    match id {
        ControlId::Seed => app.seed_locked = true,
        ControlId::Volume => return vec![Effect::SetVolume(app.volume())],
        _ => {}
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
        Action::NewPiece => start(app, action, PromptSource::New),
        Action::ContinueSong => start(app, action, PromptSource::RandomSong),
        Action::Retry => {
            let again = app.last_continue.clone().expect("checked by unavailable");
            start(app, action, PromptSource::Given(again))
        }
        Action::ContinueFile => {
            app.path_input = Some(PathInput::default());
            Vec::new()
        }
        Action::Extend => {
            app.history.push(app.piece.clone());
            let more = prompt::extend(&app.piece.words, app.piece.title.clone());
            start(app, action, PromptSource::Given(more))
        }
        Action::Undo => {
            app.piece = app.history.pop().expect("checked by unavailable");
            app.gen = GenState::Idle;
            app.toast = Some("undid the last extension".into());
            Vec::new()
        }
    }
}

fn start(app: &mut App, action: Action, prompt: PromptSource) -> Vec<Effect> {
    if !app.seed_locked {
        // A new seed for every generation unless the user fixed one; shown so it can be reused.
        let next = (app.value(ControlId::Seed) as u64)
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
            >> 33;
        app.controls[ControlId::Seed].value = (next % 1_000_000) as f64;
    }
    let options = app.options();
    app.running_action = Some(action);
    app.toast = None;
    app.scroll = 0;
    app.gen = GenState::Running {
        made: 0,
        total: options.words,
        elapsed: Duration::ZERO,
    };
    let mut effects = Vec::new();
    if app.playing.is_some() {
        app.playing = None;
        effects.push(Effect::Stop);
    }
    effects.push(Effect::Generate { prompt, options });
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
        bpm: app.value(ControlId::Bpm),
        volume: app.volume(),
    }]
}

fn save(app: &mut App, wav: bool) -> Vec<Effect> {
    if app.piece.words.len() <= 2 {
        app.toast = Some("nothing to save yet".into());
        return Vec::new();
    }
    let words = app.piece.words.clone();
    let bpm = app.value(ControlId::Bpm);
    vec![if wav {
        Effect::SaveWav { words, bpm }
    } else {
        Effect::SaveMidi { words, bpm }
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_indexed_in_screen_order() {
        let controls = Controls::new(&SampleOptions::default(), 7);
        for (i, (id, control)) in controls.iter().enumerate() {
            assert_eq!(id.position(), i, "{id:?} is declared out of ALL's order");
            assert_eq!(controls[id], *control);
        }
        assert_eq!(controls[ControlId::Seed].value, 7.0);
        assert_eq!(controls[ControlId::Tokens].value, 500.0);
        let last = ControlId::ALL[ControlId::ALL.len() - 1];
        assert_eq!(ControlId::Temperature.moved(-1), last);
        assert_eq!(last.moved(1), ControlId::Temperature);
        assert_eq!(ControlId::Temperature.moved(1), ControlId::Tokens);
    }
}
