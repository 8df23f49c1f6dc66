//! The screen's state and what passes between it and the runtime: the [`App`], what can happen
//! to it ([`Message`]) and what it asks the runtime to do ([`Effect`]). Data and questions about
//! it only: every change is `update`'s ([`super::app`]), so this module imports none of the
//! modules that make changes.

use super::controls::{ControlId, Controls, ScaleChoice};
use super::keys::Keymap;
use super::saved::Settings;
use crate::music::notes::{from_words, STEPS_PER_QUARTER};
use crate::music::words::Titled;
use crate::music::words::Word;
use crate::sample::infill::Bars;
use crate::sample::{SampleOptions, MAX_TAKES};
use crossterm::event::{KeyEvent, MouseEvent};
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
    Given(Titled),
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
    Started(Titled),
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
    Phrase(Titled),
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
    /// The Takes setting and the takes made.
    pub takes: Takes,
    /// Pieces before each extension or regeneration, for Undo.
    pub history: Vec<Piece>,
    /// The bars selected to regenerate.
    pub selection: Option<Bars>,
    /// The bar where a drag on the roll began (it selects from there).
    pub drag_bar: Option<u32>,
    /// The prompt of the last Continue, for Retry.
    pub last_continue: Option<Titled>,
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

    /// The piece on screen: the chosen take.
    pub fn piece(&self) -> &Piece {
        self.takes.piece()
    }

    pub fn piece_mut(&mut self) -> &mut Piece {
        self.takes.piece_mut()
    }

    /// `piece` alone on screen (Undo, the last piece read back at a start).
    pub fn show_only(&mut self, piece: Piece) {
        self.takes.show_only(piece);
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
            Action::Extend if self.piece().words.len() <= 1 => {
                Some("Extend goes on from the piece on screen: make one first".into())
            }
            Action::Undo if self.history.is_empty() => Some("nothing to undo".into()),
            _ => None,
        }
    }

    /// Length of the piece on screen in seconds at the chosen tempo.
    pub fn music_seconds(&self) -> f64 {
        from_words(&self.piece().words).end as f64 * self.seconds_per_step()
    }

    /// The first grid step the roll shows, `cols` columns wide: where the user scrolled, unless
    /// the music being made or played has run past the right edge; then it follows, keeping a
    /// quarter of the width ahead.
    pub fn roll_scroll(&self, cols: u16) -> u64 {
        let width = cols as u64 * self.zoom.max(1) as u64;
        let follow = self.playhead_step().or_else(|| {
            self.is_generating()
                .then(|| from_words(&self.piece().words).end)
        });
        match follow {
            Some(at) if width > 0 && at >= self.scroll + width => at - width * 3 / 4,
            _ => self.scroll,
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

/// The takes are decoded together, so N takes cost more than one: on the shipped model here 2
/// take about 2.2x one take's time and 4 about 4.8x (its weights fit in the CPU cache, so
/// sharing their reads saves little). One take keeps Enter instant; more is asked for.
pub const DEFAULT_TAKES: usize = 1;

/// The Takes setting and the takes made: every take owns its piece, and the chosen one is the
/// piece on screen ([`App::piece`]), so the roll, play, save, Extend and Undo read it as they
/// read a single piece.
#[derive(Clone, Debug, PartialEq)]
pub struct Takes {
    /// How many takes the next generation makes, 1 to [`MAX_TAKES`].
    pub count: usize,
    /// Which take is on screen (0-based).
    pub chosen: usize,
    /// Every take of the piece on screen, in order: one for a piece made alone; never none.
    pieces: Vec<Piece>,
}

impl Default for Takes {
    fn default() -> Takes {
        Takes {
            count: DEFAULT_TAKES,
            chosen: 0,
            pieces: vec![Piece::default()],
        }
    }
}

impl Takes {
    /// Takes of the piece on screen (1 for a piece made alone, or none made yet).
    pub fn made(&self) -> usize {
        self.pieces.len()
    }

    /// Sets the count from the settings file, brought into 1 to [`MAX_TAKES`].
    pub fn set_count(&mut self, count: f64) {
        if !count.is_nan() {
            self.count = (count.round() as usize).clamp(1, MAX_TAKES);
        }
    }

    /// The chosen take's piece.
    pub fn piece(&self) -> &Piece {
        &self.pieces[self.chosen]
    }

    pub fn piece_mut(&mut self) -> &mut Piece {
        &mut self.pieces[self.chosen]
    }

    /// `piece` alone on screen: the other takes are forgotten (Undo, a piece read back).
    pub fn show_only(&mut self, piece: Piece) {
        self.pieces = vec![piece];
        self.chosen = 0;
    }

    /// Every take of the piece on screen.
    pub fn pieces_mut(&mut self) -> &mut [Piece] {
        &mut self.pieces
    }

    /// A generation of `takes` takes begins after `prompt`: every take starts as it. The chosen
    /// take stays where it was if there is one such.
    pub fn begin(&mut self, prompt: Piece, takes: usize) {
        if self.chosen >= takes {
            self.chosen = 0;
        }
        self.pieces = vec![prompt; takes.max(1)];
    }

    /// Take `take` (0-based) on screen; false where there is no such take.
    pub fn choose(&mut self, take: usize) -> bool {
        let there = take < self.pieces.len();
        if there {
            self.chosen = take;
        }
        there
    }
}

/// Where answering stands.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Answering {
    /// Phrases are being waited for (from choosing the action until Esc or a refusal).
    pub on: bool,
    /// The latest phrase that arrived while an answer was being made: answered next.
    pub pending: Option<Titled>,
}

/// Where playing-while-made stands for the generation running.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stream {
    /// Nothing plays while it is made.
    #[default]
    Off,
    /// An answer or an extension waits for its first new note, to play from there.
    AwaitingFirstNote,
    /// The chosen take plays; this many of its words have gone to the playback.
    Playing { sent: usize },
}
