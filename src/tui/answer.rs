//! "Answer what I play": the listener on the laptop hears its keyboard; each phrase played
//! there becomes the prompt, the model continues it with the screen's settings, and the answer
//! plays on the laptop; then the screen waits for the next phrase, until Esc.

use super::act::{play_from, start};
use super::controls::ControlId;
use super::state::{Action, Answering, App, Effect, PromptSource};
use crate::music::notes::from_words;
use crate::music::words::Titled;

/// The menu action: start waiting for phrases, or stop.
pub(super) fn choose(app: &mut App) -> Vec<Effect> {
    if app.answering.on {
        return stop(app);
    }
    app.answering.on = true;
    app.toast = Some("asking the listener to hear its keyboard...".into());
    vec![Effect::Listen(Some(app.value(ControlId::Bpm)))]
}

/// Esc while no generation runs: stop waiting for phrases.
pub(super) fn stop(app: &mut App) -> Vec<Effect> {
    app.answering = Answering::default();
    app.toast = Some("stopped answering".into());
    vec![Effect::Listen(None)]
}

/// The listener's answer: where the keys come from, or why none can be heard.
pub(super) fn listening(app: &mut App, keys: Result<String, String>) {
    if !app.answering.on {
        return;
    }
    match keys {
        Ok(from) => {
            app.toast = Some(format!(
                "play a phrase ({from}): the answer plays there; Esc stops"
            ))
        }
        Err(why) => {
            app.answering = Answering::default();
            app.toast = Some(why);
        }
    }
}

/// A phrase arrived: answered now, or after the answer being made.
pub(super) fn phrase(app: &mut App, prompt: Titled) -> Vec<Effect> {
    if !app.answering.on {
        return Vec::new();
    }
    if app.is_generating() {
        app.answering.pending = Some(prompt);
        return Vec::new();
    }
    start(app, Action::Answer, PromptSource::Given(prompt))
}

/// An answer was made: it plays from its first note (unless it played while it was made), and
/// a phrase that came meanwhile is answered next.
pub(super) fn made(app: &mut App, played: bool) -> Vec<Effect> {
    let mut effects = match first_new_step(app).filter(|_| !played) {
        Some(step) => play_from(app, step as f64 * app.seconds_per_step()),
        None => Vec::new(),
    };
    if let Some(next) = app.answering.pending.take() {
        effects.extend(start(app, Action::Answer, PromptSource::Given(next)));
    }
    effects
}

/// The step where the first note after the prompt starts (an answer's, an extension's), once it
/// is made.
pub(super) fn first_new_step(app: &App) -> Option<u64> {
    let piece = app.piece();
    let prompt = &piece.words[..piece.prompt_len.min(piece.words.len())];
    let prompt_notes = from_words(prompt).notes.len();
    from_words(&piece.words)
        .notes
        .get(prompt_notes)
        .map(|n| n.onset)
}
