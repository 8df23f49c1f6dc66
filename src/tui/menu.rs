//! The menu's actions: what Enter (or a double click) on each one does.

use super::act::start;
use super::answer;
use super::state::{Action, App, Effect, GenState, PathInput, PromptSource};
use crate::sample::prompt;

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
            app.history.push(app.piece().clone());
            let more = prompt::extend(&app.piece().words, app.piece().title.clone());
            start(app, action, PromptSource::Given(more))
        }
        Action::Undo => {
            // The piece extended was one take: it is the only one again.
            let before = app.history.pop().expect("checked by unavailable");
            app.show_only(before);
            app.gen = GenState::Idle;
            app.toast = Some("undid the last change".into());
            Vec::new()
        }
        Action::Answer => answer::choose(app),
    }
}
