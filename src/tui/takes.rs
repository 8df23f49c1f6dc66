//! The screen's takes: the Takes setting (how many versions the next generation makes) and the
//! takes of the generation on screen, one of them chosen. The chosen take is [`App::piece`], so
//! the roll, play, save, Extend and Undo read it as they read a single piece.

use super::app::{play_from, App, Effect, GenState, Piece};
use crate::music::words::Word;
use crate::sample::MAX_TAKES;

/// The takes are decoded together, so N takes cost more than one: on the shipped model here 2
/// take about 2.2x one take's time and 4 about 4.8x (its weights fit in the CPU cache, so
/// sharing their reads saves little). One take keeps Enter instant; more is asked for.
pub const DEFAULT_TAKES: usize = 1;

/// The Takes setting and the takes made.
#[derive(Clone, Debug, PartialEq)]
pub struct Takes {
    /// How many takes the next generation makes, 1 to [`MAX_TAKES`].
    pub count: usize,
    /// Which take is on screen (0-based).
    pub chosen: usize,
    /// Every take of the generation on screen, in order; the chosen one's slot is stale (its
    /// piece is [`App::piece`]). Empty for a piece of one take.
    slots: Vec<Piece>,
}

impl Default for Takes {
    fn default() -> Takes {
        Takes {
            count: DEFAULT_TAKES,
            chosen: 0,
            slots: Vec::new(),
        }
    }
}

impl Takes {
    /// Takes of the piece on screen (1 for a piece made alone, or none made yet).
    pub fn made(&self) -> usize {
        self.slots.len().max(1)
    }

    /// Sets the count from the settings file, brought into 1 to [`MAX_TAKES`].
    pub fn set_count(&mut self, count: f64) {
        if !count.is_nan() {
            self.count = (count.round() as usize).clamp(1, MAX_TAKES);
        }
    }

    /// Forgets the other takes: the piece on screen is the only one (Undo, a piece read back).
    pub fn single(&mut self) {
        self.slots.clear();
        self.chosen = 0;
    }
}

/// `t` / `T`: one take more or fewer for the next generation (1 to [`MAX_TAKES`]).
pub(super) fn change_count(app: &mut App, by: isize) {
    let count = (app.takes.count as isize + by).clamp(1, MAX_TAKES as isize) as usize;
    app.takes.count = count;
    app.toast = Some(match count {
        1 => "takes: 1 (Enter makes one piece)".to_string(),
        n => format!("takes: {n} (Enter makes {n} versions; 1-{n} chooses)"),
    });
}

/// A generation of `takes` takes begins after `prompt`: every take starts as it. The chosen
/// take stays where it was if there is one such.
pub(super) fn begin(app: &mut App, prompt: Piece, takes: usize) {
    let t = &mut app.takes;
    if t.chosen >= takes {
        t.chosen = 0;
    }
    t.slots = if takes > 1 {
        vec![prompt.clone(); takes]
    } else {
        Vec::new()
    };
    app.piece = prompt;
}

/// One new word of take `take`; whether it is the chosen one (on screen).
pub(super) fn push(app: &mut App, take: usize, word: Word) -> bool {
    if take == app.takes.chosen || app.takes.slots.is_empty() {
        app.piece.words.push(word);
        return true;
    }
    if let Some(piece) = app.takes.slots.get_mut(take) {
        piece.words.push(word);
    }
    false
}

/// The final words of every take (prompt and new words, ended), replacing what was streamed.
/// Bars regenerated in place have no prompt of their own: the whole piece counts as one.
pub(super) fn finish(app: &mut App, mut takes: Vec<Vec<Word>>, regenerated: bool) {
    let chosen = app.takes.chosen.min(takes.len().saturating_sub(1));
    if takes.len() > 1 {
        for (slot, words) in app.takes.slots.iter_mut().zip(&takes) {
            slot.words.clone_from(words);
            if regenerated {
                slot.prompt_len = words.len();
            }
        }
    }
    if chosen < takes.len() {
        app.piece.words = std::mem::take(&mut takes[chosen]);
        if regenerated {
            app.piece.prompt_len = app.piece.words.len();
        }
    }
}

/// Keys 1-8 or a click: take `take` (0-based) goes on screen, while generating or after. The
/// status and the progress follow it; if the piece was playing, the new take plays from there.
pub(super) fn choose_take(app: &mut App, take: usize) -> Vec<Effect> {
    let made = app.takes.made();
    if take >= made {
        app.toast = Some(match made {
            1 => "one take on screen: raise Takes (t) and generate to make more".to_string(),
            n => format!("take {} of {n}? there are {n}", take + 1),
        });
        return Vec::new();
    }
    if take == app.takes.chosen {
        return Vec::new();
    }
    let t = &mut app.takes;
    std::mem::swap(&mut app.piece, &mut t.slots[t.chosen]);
    std::mem::swap(&mut app.piece, &mut t.slots[take]);
    t.chosen = take;
    let new_words = app.piece.words.len().saturating_sub(app.piece.prompt_len);
    let seconds = super::app::music_seconds(app);
    match &mut app.gen {
        GenState::Running { made, .. } => *made = new_words,
        GenState::Complete {
            tokens,
            music_seconds,
            ..
        } => {
            // The chosen take's words; an ended piece counts its END as the generation does.
            *tokens = new_words;
            *music_seconds = seconds;
        }
        _ => {}
    }
    match app.playing {
        Some(at) => play_from(app, at),
        None => Vec::new(),
    }
}

/// "take 2/4 | " for the status line when there is more than one take, else nothing.
pub fn status_prefix(app: &App) -> String {
    match app.takes.made() {
        1 => String::new(),
        n => format!("take {}/{n} | ", app.takes.chosen + 1),
    }
}
