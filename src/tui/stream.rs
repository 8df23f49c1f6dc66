//! Playing a piece while it is made: once a generation starts, the chosen take plays from its
//! start (an answer or an extension from its first new note) and grows as its words come, so the
//! musician hears it seconds before it is done, on the laptop through the listener as on a sound
//! card here.
//! `a` switches it off (then space plays a piece once it is made); the setting is kept.

use super::act::{play_from, streams};
use super::answer;
use super::controls::ControlId;
use super::state::{Action, App, Effect, Stream};

/// A generation began: its piece starts playing, if pieces play while made; where what came
/// before was just heard (a phrase answered, a piece extended), from its first new note.
pub(super) fn started(app: &mut App) -> Vec<Effect> {
    app.stream = Stream::Off;
    if !app.play_while_made || !streams(app) {
        return Vec::new();
    }
    if matches!(app.running_action, Some(Action::Answer | Action::Extend)) {
        app.stream = Stream::AwaitingFirstNote;
        return first_new_note(app);
    }
    play_from(app, 0.0)
}

/// Each frame while it runs: the new words go to the playback (an answer starts once its first
/// note is there).
pub(super) fn tick(app: &mut App) -> Vec<Effect> {
    match app.stream {
        Stream::Off => Vec::new(),
        Stream::AwaitingFirstNote => first_new_note(app),
        Stream::Playing { sent } if sent == app.piece().words.len() => Vec::new(),
        Stream::Playing { .. } => grow(app, false),
    }
}

/// The generation ended: the piece playing is whole (what was made, if it was cancelled); a
/// failed one stops. Returns the effects, and whether the piece was playing as it was made.
pub(super) fn finished(app: &mut App, failed: bool) -> (Vec<Effect>, bool) {
    let was = std::mem::take(&mut app.stream);
    match was {
        Stream::Playing { .. } if failed => {
            app.playing = None;
            (vec![Effect::Stop], true)
        }
        Stream::Playing { .. } => (grow(app, true), true),
        Stream::Off | Stream::AwaitingFirstNote => (Vec::new(), false),
    }
}

/// `a`: play pieces while they are made, or not (from the next generation).
pub(super) fn toggle(app: &mut App) {
    app.play_while_made = !app.play_while_made;
    app.toast = Some(
        if app.play_while_made {
            "pieces play while they are made (a: wait for space)"
        } else {
            "pieces play when space is pressed (a: play while made)"
        }
        .into(),
    );
}

fn grow(app: &mut App, whole: bool) -> Vec<Effect> {
    app.stream = if whole {
        Stream::Off
    } else {
        Stream::Playing {
            sent: app.piece().words.len(),
        }
    };
    vec![Effect::Grow {
        words: app.piece().words.clone(),
        bpm: app.value(ControlId::Bpm),
        whole,
    }]
}

/// Plays from the first new note, once that is made.
fn first_new_note(app: &mut App) -> Vec<Effect> {
    match answer::first_new_step(app) {
        Some(step) => play_from(app, step as f64 * app.seconds_per_step()),
        None => Vec::new(),
    }
}
