//! The TUI's state and its `update`: everything that can happen is a [`Message`]; `update` changes
//! the [`App`] and returns [`Effect`]s for the runtime to carry out (start a generation, play,
//! save). No terminal, thread or model is touched here, so key sequences can be tested directly.

use super::answer::{self, Answering};
pub use super::controls::{Control, ControlId, Controls, ScaleChoice};
use super::keys::{Command, Keymap};
use super::saved::Settings;
use super::stream::{self, Stream};
use super::takes::{self, Takes};
use crate::music::notes::{from_words, STEPS_PER_BAR, STEPS_PER_QUARTER};
use crate::music::words::Word;
use crate::sample::infill::Bars;
use crate::sample::{prompt, Prompt, SampleOptions};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent};
use ratatui::layout::Rect;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Grid steps per word in the seed corpus (4.43 M steps over 10 M words), used to show roughly
/// how long a requested number of words will play.
pub const STEPS_PER_WORD: f64 = 0.443;

/// The option menu, in screen order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    NewPiece,
    ContinueSong,
    Retry,
    ContinueFile,
    Extend,
    Undo,
    /// Phrases played on the laptop's keyboard, answered one after another.
    Answer,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Action::NewPiece,
        Action::ContinueSong,
        Action::Retry,
        Action::ContinueFile,
        Action::Extend,
        Action::Undo,
        Action::Answer,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Action::NewPiece => "New piece",
            Action::ContinueSong => "Continue song",
            Action::Retry => "Retry",
            Action::ContinueFile => "Continue file",
            Action::Extend => "Extend",
            Action::Undo => "Undo last change",
            Action::Answer => "Answer what I play",
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
        /// How many takes to make (1 to [`crate::sample::MAX_TAKES`]), decoded together.
        takes: usize,
        /// Lock the new notes to the key the prompt fits best (the Scale control's "match
        /// prompt"): only the runtime knows a random song's or a file's prompt.
        scale_from_prompt: bool,
    },
    /// Regenerate `bars` of the piece `words` as `takes` fills, best first.
    Regenerate {
        words: Vec<Word>,
        bars: Bars,
        options: SampleOptions,
        takes: usize,
    },
    Cancel,
    /// Play the piece from `from` seconds (0 = the start; more is a seek); `open`: it is still
    /// being made, and [`Effect::Grow`] brings the rest.
    Play {
        /// What a listener saves it as: the song continued (or "new piece"), the seed, the take.
        title: String,
        words: Vec<Word>,
        bpm: f64,
        volume: f32,
        from: f64,
        open: bool,
    },
    /// The piece playing while it is made, grown: its words so far, or all of them (`whole`).
    Grow {
        words: Vec<Word>,
        bpm: f64,
        whole: bool,
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
    /// Play with the built-in voice (`None`) or a SoundFont: this file, or the first one found
    /// (`Some(None)`). Takes effect at the next play; nothing is regenerated.
    SetVoice(Option<Option<PathBuf>>),
    /// Ask the listener to hear its keyboard at this tempo and send the phrases played there
    /// (`None`: stop).
    Listen(Option<f64>),
    Quit,
}

/// Everything that can happen.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    Key(KeyEvent),
    /// A click, drag or wheel turn, and when it came (two clicks close together are a double
    /// click).
    Mouse(MouseEvent, Instant),
    /// The terminal's size, columns then rows: where the mouse finds what was drawn.
    Resize(u16, u16),
    /// A generation began; its prompt is known (for Continue song, with the piece's title).
    Started(Prompt),
    /// One new word of take `take` (0-based).
    Word {
        take: usize,
        word: Word,
    },
    /// The generation ended: finished, cancelled (keeping what was made), or failed.
    Finished {
        cancelled: bool,
        elapsed: Duration,
        error: Option<String>,
        /// The whole final piece of every take (prompt and new words, ended), replacing what
        /// was streamed.
        words: Option<Vec<Vec<Word>>>,
    },
    /// Time since the running generation started (sent with each frame while it runs).
    Tick(Duration),
    /// Playback position in seconds, or `None` when playback ended.
    PlayPosition(Option<f64>),
    /// A toast (file saved, an error from the runtime).
    Toast(String),
    /// The voice that plays now: a SoundFont file, or `None` for the built-in voice.
    Voice(Option<PathBuf>),
    /// The listener's answer to [`Effect::Listen`]: where the keys come from, or why none.
    Listening(Result<String, String>),
    /// A phrase played on the laptop's keyboard, as a prompt.
    Phrase(Prompt),
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
        /// The Length asked for, in bars (`None`: `total` words).
        bars: Option<u32>,
        /// The bars being regenerated, where that is what runs (no words stream then).
        regenerating: Option<Bars>,
    },
    Complete {
        tokens: usize,
        music_seconds: f64,
        took: Duration,
        cancelled: bool,
        /// The bars regenerated, where that is what ran.
        regenerated: Option<Bars>,
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
    /// Where Continue song's pieces come from, in a few words (shown in the status line).
    pub songs: Option<String>,
    /// Why there is no sound (no audio device), if there is none.
    pub audio_error: Option<String>,
    /// Where sound goes ("sound: listener via SSH (...)", "sound: sound card ..."), or why a
    /// listener that was named is not used.
    pub sound: Option<String>,
    /// Where the model runs, e.g. "cpu".
    pub device: String,
    /// How the model regenerates bars ([`crate::sample::infill::method`]), if there is one.
    pub fill_method: &'static str,
}

#[derive(Clone, Debug, PartialEq)]
pub struct App {
    pub env: Environment,
    pub controls: Controls,
    pub seed_locked: bool,
    pub selected_control: ControlId,
    pub selected_action: usize,
    pub focus: Focus,
    /// The piece on screen: the chosen take.
    pub piece: Piece,
    /// The Takes setting and the takes made.
    pub takes: Takes,
    /// Pieces before each extension or regeneration, for Undo.
    pub history: Vec<Piece>,
    /// The bars selected to regenerate.
    pub selection: Option<Bars>,
    /// The bar where a drag on the roll began (it selects from there).
    pub drag_bar: Option<u32>,
    /// The prompt of the last Continue, for Retry.
    pub last_continue: Option<Prompt>,
    /// The action whose generation is running or last ran.
    pub running_action: Option<Action>,
    /// How many takes the generation running or last run makes.
    pub running_takes: usize,
    pub gen: GenState,
    pub toast: Option<String>,
    pub help_open: bool,
    /// What each key does: the defaults, or `keys.toml`'s (read by the run loop at start).
    pub keys: Keymap,
    pub path_input: Option<PathInput>,
    /// Playback position in seconds while playing.
    pub playing: Option<f64>,
    /// First grid step shown by the roll, and steps per column (1 = finest).
    pub scroll: u64,
    pub zoom: u32,
    /// Where space starts playing, in seconds (set by a click on the roll).
    pub play_from: f64,
    /// The terminal's size, for the mouse.
    pub size: Rect,
    /// The last click on a menu item and when, for double clicks.
    pub last_click: Option<(usize, Instant)>,
    /// The control being dragged on.
    pub dragging: Option<ControlId>,
    /// The settings file as it was read: what the screen does not own (voice, SoundFont)
    /// goes back into it unchanged.
    pub kept: Settings,
    /// The SoundFont playing, or `None` for the built-in voice.
    pub soundfont: Option<PathBuf>,
    /// "Answer what I play": whether phrases are awaited, and one waiting its turn.
    pub answering: Answering,
    /// Pieces play while they are made (`a` switches it; kept in the settings).
    pub play_while_made: bool,
    /// What of the piece being made has gone to the playback.
    pub stream: Stream,
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
            takes: Takes::default(),
            history: Vec::new(),
            selection: None,
            drag_bar: None,
            last_continue: None,
            running_action: None,
            running_takes: 1,
            gen: GenState::Idle,
            toast: None,
            help_open: false,
            keys: Keymap::defaults(),
            path_input: None,
            playing: None,
            scroll: 0,
            zoom: 1,
            play_from: 0.0,
            size: Rect::default(),
            last_click: None,
            dragging: None,
            kept: Settings::default(),
            soundfont: None,
            answering: Answering::default(),
            play_while_made: true,
            stream: Stream::Off,
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
            scale: match self.controls.scale() {
                ScaleChoice::Key(s) => Some(s),
                ScaleChoice::Off | ScaleChoice::MatchPrompt => None,
            },
            range: self.controls.range(),
            polyphony: self.controls.polyphony(),
            density: self.controls.density(),
            bars: self.controls.bars(),
            fill: None,
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

    /// The grid step of the playhead: where playback is, or where it will start.
    pub fn playhead_step(&self) -> Option<u64> {
        let at = self
            .playing
            .or((self.play_from > 0.0).then_some(self.play_from))?;
        Some((at / self.seconds_per_step()) as u64)
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
        Message::Mouse(event, at) => super::mouse::on_mouse(app, event, at),
        Message::Resize(w, h) => {
            app.size = Rect::new(0, 0, w, h);
            Vec::new()
        }
        Message::Started(prompt) => {
            if matches!(
                app.running_action,
                Some(Action::ContinueSong | Action::ContinueFile)
            ) {
                app.last_continue = Some(prompt.clone());
            }
            // A piece whose bars are regenerated keeps its title.
            let title = match app.gen {
                GenState::Running {
                    regenerating: Some(_),
                    ..
                } => app.piece.title.clone(),
                _ => prompt.title,
            };
            let piece = Piece {
                prompt_len: prompt.words.len(),
                words: prompt.words,
                title,
            };
            let takes = app.running_takes;
            takes::begin(app, piece, takes);
            stream::started(app)
        }
        Message::Word { take, word } => {
            // The progress counts the chosen take's words.
            if takes::push(app, take, word) {
                if let GenState::Running { made, .. } = &mut app.gen {
                    *made += 1;
                }
            }
            Vec::new()
        }
        Message::Finished {
            cancelled,
            elapsed,
            error,
            words,
        } => {
            let (mut made, regenerated) = match app.gen {
                GenState::Running {
                    made, regenerating, ..
                } => (made, regenerating),
                _ => (0, None),
            };
            if regenerated.is_some() && (cancelled || error.is_some()) {
                // Nothing half-filled stays: the piece is as it was.
                app.piece = app.history.pop().unwrap_or_default();
                app.takes.single();
                app.gen = match error {
                    Some(e) => GenState::Failed(e),
                    None => GenState::Idle,
                };
                app.toast = Some("regeneration cancelled: the bars are as they were".into());
                return Vec::new();
            }
            if let Some(words) = words {
                takes::finish(app, words, regenerated.is_some());
                made = app.piece.words.len().saturating_sub(app.piece.prompt_len);
            }
            let (mut effects, played) = stream::finished(app, error.is_some());
            app.play_from = 0.0;
            app.scroll = match regenerated {
                // The bar before the new ones, where they are heard coming in.
                Some(bars) => bars.steps().start.saturating_sub(STEPS_PER_BAR),
                None => new_part_scroll(app),
            };
            let answered =
                error.is_none() && !cancelled && app.running_action == Some(Action::Answer);
            app.gen = match error {
                Some(e) => GenState::Failed(e),
                None => GenState::Complete {
                    tokens: made,
                    music_seconds: music_seconds(app),
                    took: elapsed,
                    cancelled,
                    regenerated,
                },
            };
            if answered && app.answering.on {
                effects.extend(answer::made(app, played));
            }
            effects
        }
        Message::Tick(since_start) => {
            if let GenState::Running { elapsed, .. } = &mut app.gen {
                *elapsed = since_start;
            }
            stream::tick(app)
        }
        Message::PlayPosition(pos) => {
            app.playing = pos;
            Vec::new()
        }
        Message::Toast(text) => {
            app.toast = Some(text);
            Vec::new()
        }
        Message::Voice(soundfont) => {
            // Kept in the settings: the next start plays with the same voice.
            app.kept.voice = Some(
                if soundfont.is_some() {
                    "soundfont"
                } else {
                    "built-in"
                }
                .into(),
            );
            if soundfont.is_some() {
                app.kept.soundfont.clone_from(&soundfont);
            }
            app.soundfont = soundfont;
            Vec::new()
        }
        Message::Listening(keys) => {
            answer::listening(app, keys);
            Vec::new()
        }
        Message::Phrase(prompt) => answer::phrase(app, prompt),
    }
}

/// Switch voice: the other one. A SoundFont used before is loaded again, else the first one found.
fn switch_voice(app: &App) -> Vec<Effect> {
    match app.soundfont {
        Some(_) => vec![Effect::SetVoice(None)],
        None => vec![Effect::SetVoice(Some(app.kept.soundfont.clone()))],
    }
}

/// Where the roll starts once a piece is made: the bar before the first new note (the end of the
/// prompt and the new music in view, not a stretch of silence or the start of a long prompt);
/// the start where the new part is the whole piece.
fn new_part_scroll(app: &App) -> u64 {
    let prompt_end =
        from_words(&app.piece.words[..app.piece.prompt_len.min(app.piece.words.len())]).end;
    let first_new = from_words(&app.piece.words)
        .notes
        .iter()
        .map(|n| n.onset)
        .filter(|&onset| onset >= prompt_end)
        .min();
    match first_new {
        Some(onset) if onset >= STEPS_PER_BAR => (onset / STEPS_PER_BAR - 1) * STEPS_PER_BAR,
        _ => 0,
    }
}

/// Length of the piece on screen in seconds at the chosen tempo.
pub fn music_seconds(app: &App) -> f64 {
    from_words(&app.piece.words).end as f64 * app.seconds_per_step()
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
        let help = app.keys.lookup(&key) == Some(Command::Help);
        if help || matches!(key.code, KeyCode::Esc | KeyCode::Char('q')) {
            app.help_open = false;
        }
        return Vec::new();
    }
    match app.keys.lookup(&key) {
        Some(command) => run_command(app, command, &key),
        None => Vec::new(),
    }
}

/// What a command does; `key` is the key that ran it, for Shift's large steps.
fn run_command(app: &mut App, command: Command, key: &KeyEvent) -> Vec<Effect> {
    match command {
        Command::Quit => {
            app.quit = true;
            vec![Effect::Cancel, Effect::Stop, Effect::Quit]
        }
        Command::Help => {
            app.help_open = true;
            Vec::new()
        }
        Command::Cancel => {
            if app.is_generating() {
                vec![Effect::Cancel]
            } else if app.answering.on {
                answer::stop(app)
            } else {
                app.toast = None;
                app.selection = None;
                Vec::new()
            }
        }
        Command::SwitchFocus => {
            app.focus = match app.focus {
                Focus::Controls => Focus::Menu,
                Focus::Menu => Focus::Controls,
            };
            Vec::new()
        }
        Command::Up => {
            move_selection(app, -1);
            Vec::new()
        }
        Command::Down => {
            move_selection(app, 1);
            Vec::new()
        }
        Command::Decrease => change(app, -key_steps(key), false),
        Command::Increase => change(app, key_steps(key), false),
        Command::DecreaseMore => change(app, -1.0, true),
        Command::IncreaseMore => change(app, 1.0, true),
        Command::LockSeed => {
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
        Command::ZoomIn => {
            app.zoom = (app.zoom / 2).max(1);
            Vec::new()
        }
        Command::ZoomOut => {
            app.zoom = (app.zoom * 2).min(32);
            Vec::new()
        }
        Command::ScrollBack => {
            app.scroll = app.scroll.saturating_sub(STEPS_PER_BAR * app.zoom as u64);
            Vec::new()
        }
        Command::ScrollForward => {
            app.scroll += STEPS_PER_BAR * app.zoom as u64;
            Vec::new()
        }
        Command::Run => {
            let action = Action::ALL[app.selected_action];
            choose(app, action)
        }
        Command::PlayStop => toggle_play(app),
        Command::SaveMidi => save(app, false),
        Command::SaveWav => save(app, true),
        Command::SwitchVoice => switch_voice(app),
        Command::PlayWhileMade => {
            stream::toggle(app);
            Vec::new()
        }
        Command::Undo => choose(app, Action::Undo),
        Command::SelectBar => {
            select_bar(app);
            Vec::new()
        }
        Command::SelectFewer => {
            app.selection = app.selection.filter(|b| b.last > b.first).map(|b| Bars {
                last: b.last - 1,
                ..b
            });
            app.toast = Some(selection_note(app));
            Vec::new()
        }
        Command::Regenerate => regenerate(app),
        Command::Take(n) => takes::choose_take(app, usize::from(n) - 1),
        Command::MoreTakes => {
            takes::change_count(app, 1);
            Vec::new()
        }
        Command::FewerTakes => {
            takes::change_count(app, -1);
            Vec::new()
        }
    }
}

pub(super) fn move_selection(app: &mut App, by: isize) {
    match app.focus {
        Focus::Controls => app.selected_control = app.selected_control.moved(by),
        Focus::Menu => {
            let n = Action::ALL.len() as isize;
            app.selected_action = (app.selected_action as isize + by).rem_euclid(n) as usize;
        }
    }
}

/// Decrease/increase: on the controls, change the selected value (by its big step with Shift, or
/// `big` for decrease_more/increase_more); on the menu, only the `big` ones reach the selected
/// control.
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
    changed(app, id)
}

/// What follows a change of control `id`, however it was made (key, click, wheel).
pub(super) fn changed(app: &mut App, id: ControlId) -> Vec<Effect> {
    match id {
        ControlId::Seed => app.seed_locked = true,
        ControlId::Volume => return vec![Effect::SetVolume(app.volume())],
        _ => {}
    }
    Vec::new()
}

/// Enter on a menu action.
pub(super) fn choose(app: &mut App, action: Action) -> Vec<Effect> {
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
            // The piece extended was one take: it is the only one again.
            app.takes.single();
            app.gen = GenState::Idle;
            app.toast = Some("undid the last change".into());
            Vec::new()
        }
        Action::Answer => answer::choose(app),
    }
}

pub(super) fn start(app: &mut App, action: Action, prompt: PromptSource) -> Vec<Effect> {
    let mut effects = begin_run(app);
    let options = app.options();
    app.running_action = Some(action);
    app.scroll = 0;
    app.gen = GenState::Running {
        made: 0,
        total: options.words,
        elapsed: Duration::ZERO,
        bars: options.bars,
        regenerating: None,
    };
    let scale_from_prompt = app.controls.scale() == ScaleChoice::MatchPrompt;
    effects.push(Effect::Generate {
        prompt,
        options,
        takes: app.running_takes,
        scale_from_prompt,
    });
    effects
}

/// What every generation does first: a new seed unless it is locked, the Takes setting taken,
/// playback stopped.
fn begin_run(app: &mut App) -> Vec<Effect> {
    if !app.seed_locked {
        // A new seed for every generation unless the user fixed one; shown so it can be reused.
        let next = (app.value(ControlId::Seed) as u64)
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
            >> 33;
        app.controls[ControlId::Seed].value = (next % 1_000_000) as f64;
    }
    app.running_takes = app.takes.count;
    app.toast = None;
    app.play_from = 0.0;
    let mut effects = Vec::new();
    if app.playing.is_some() {
        app.playing = None;
        effects.push(Effect::Stop);
    }
    effects
}

/// The bars of the piece on screen (at least one).
fn piece_bars(app: &App) -> u32 {
    from_words(&app.piece.words)
        .end
        .div_ceil(STEPS_PER_BAR)
        .max(1) as u32
}

/// `b`: the bar at the playhead (or the first on screen) is selected; with a selection, the
/// next bar too, up to one past the piece's end.
fn select_bar(app: &mut App) {
    let last_bar = piece_bars(app) + 1;
    app.selection = Some(match app.selection {
        Some(b) => Bars {
            last: (b.last + 1).min(last_bar),
            ..b
        },
        None => {
            let step = app.playhead_step().unwrap_or(app.scroll);
            let bar = (step / STEPS_PER_BAR + 1).min(last_bar as u64) as u32;
            Bars {
                first: bar,
                last: bar,
            }
        }
    });
    app.toast = Some(selection_note(app));
}

/// What the status line says of the selection.
pub(super) fn selection_note(app: &App) -> String {
    match app.selection {
        Some(bars) => format!("{bars} selected: r regenerates them, Esc clears"),
        None => "no bars selected".to_string(),
    }
}

/// `r`: the selected bars of the piece on screen, regenerated as Takes fills (the piece as it
/// was goes to Undo's history).
fn regenerate(app: &mut App) -> Vec<Effect> {
    if app.is_generating() {
        app.toast = Some("a generation is running: Esc cancels it".into());
        return Vec::new();
    }
    if let Some(e) = &app.env.model_error {
        app.toast = Some(e.clone());
        return Vec::new();
    }
    let Some(bars) = app.selection else {
        app.toast = Some("select bars first: b at the playhead, or drag on the roll".into());
        return Vec::new();
    };
    if let Err(e) = crate::sample::infill::check(&app.piece.words, bars) {
        app.toast = Some(format!("{e:#}"));
        return Vec::new();
    }
    app.history.push(app.piece.clone());
    let mut effects = begin_run(app);
    app.running_action = None;
    let options = app.options();
    app.gen = GenState::Running {
        made: 0,
        total: 0,
        elapsed: Duration::ZERO,
        bars: None,
        regenerating: Some(bars),
    };
    effects.push(Effect::Regenerate {
        words: app.piece.words.clone(),
        bars,
        options,
        takes: app.running_takes,
    });
    effects
}

fn toggle_play(app: &mut App) -> Vec<Effect> {
    if app.playing.is_some() {
        app.playing = None;
        app.stream = Stream::Off;
        return vec![Effect::Stop];
    }
    play_from(app, app.play_from)
}

/// Starts the piece at `from` seconds (a seek while it plays); a piece being made plays as far
/// as it is made, and grows.
pub(super) fn play_from(app: &mut App, from: f64) -> Vec<Effect> {
    let open = stream::streams(app);
    if app.piece.words.len() <= 2 && !open {
        app.toast = Some("nothing to play yet: Enter makes a piece".into());
        return Vec::new();
    }
    app.playing = Some(from);
    app.stream = match open {
        true => Stream::Playing {
            sent: app.piece.words.len(),
        },
        false => Stream::Off,
    };
    vec![Effect::Play {
        title: piece_title(app),
        words: app.piece.words.clone(),
        bpm: app.value(ControlId::Bpm),
        volume: app.volume(),
        from,
        open,
    }]
}

/// A title a person can tell apart from the others: "Clair de Lune continued, seed 42, take 2".
fn piece_title(app: &App) -> String {
    let what = match &app.piece.title {
        Some(song) => format!("{song} continued"),
        None => "new piece".to_string(),
    };
    let take = match app.takes.made() {
        1 => String::new(),
        _ => format!(", take {}", app.takes.chosen + 1),
    };
    format!("{what}, seed {}{take}", app.value(ControlId::Seed) as u64)
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
