//! The screen's takes as `update` changes them: the Takes setting (how many versions the next
//! generation makes), the words of each take as they come, and which one is on screen. The takes
//! own their pieces ([`Takes`](super::state::Takes)); the chosen one is [`App::piece`].

use super::act::play_from;
use super::state::{App, Effect, GenState};
use crate::music::words::Word;
use crate::sample::MAX_TAKES;

/// `t` / `T`: one take more or fewer for the next generation (1 to [`MAX_TAKES`]).
pub(super) fn change_count(app: &mut App, by: isize) {
    let count = (app.takes.count as isize + by).clamp(1, MAX_TAKES as isize) as usize;
    app.takes.count = count;
    app.toast = Some(match count {
        1 => "takes: 1 (Enter makes one piece)".to_string(),
        n => format!("takes: {n} (Enter makes {n} versions; 1-{n} chooses)"),
    });
}

/// One new word of take `take`; whether it is the chosen one (on screen).
pub(super) fn push(app: &mut App, take: usize, word: Word) -> bool {
    if let Some(piece) = app.takes.pieces_mut().get_mut(take) {
        piece.words.push(word);
    }
    take == app.takes.chosen
}

/// The final words of every take (prompt and new words, ended), replacing what was streamed.
/// Bars regenerated in place have no prompt of their own: the whole piece counts as one.
pub(super) fn finish(app: &mut App, takes: Vec<Vec<Word>>, regenerated: bool) {
    for (piece, words) in app.takes.pieces_mut().iter_mut().zip(takes) {
        piece.words = words;
        if regenerated {
            piece.prompt_len = piece.words.len();
        }
    }
}

/// Keys 1-8 or a click: take `take` (0-based) goes on screen, while generating or after. The
/// status and the progress follow it; if the piece was playing, the new take plays from there.
pub(super) fn choose_take(app: &mut App, take: usize) -> Vec<Effect> {
    if take == app.takes.chosen {
        return Vec::new();
    }
    if !app.takes.choose(take) {
        app.toast = Some(match app.takes.made() {
            1 => "one take on screen: raise Takes (t) and generate to make more".to_string(),
            n => format!("take {} of {n}? there are {n}", take + 1),
        });
        return Vec::new();
    }
    let piece = app.piece();
    let new_words = piece.words.len().saturating_sub(piece.prompt_len);
    let seconds = app.music_seconds();
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
