//! The steps several parts of `update` share: starting a generation, playing the piece, and what
//! follows a control's change or a selection. Below the parts that use them (takes, answers,
//! playing while made, the menu, the mouse), so none of those imports back what imports it.

use super::controls::{ControlId, ScaleChoice};
use super::state::{Action, App, Effect, Focus, GenState, PromptSource, Stream};
use std::time::Duration;

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
pub(super) fn begin_run(app: &mut App) -> Vec<Effect> {
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

/// Starts the piece at `from` seconds (a seek while it plays); a piece being made plays as far
/// as it is made, and grows.
pub(super) fn play_from(app: &mut App, from: f64) -> Vec<Effect> {
    let open = streams(app);
    if app.piece().words.len() <= 2 && !open {
        app.toast = Some("nothing to play yet: Enter makes a piece".into());
        return Vec::new();
    }
    app.playing = Some(from);
    app.stream = match open {
        true => Stream::Playing {
            sent: app.piece().words.len(),
        },
        false => Stream::Off,
    };
    vec![Effect::Play {
        title: piece_title(app),
        words: app.piece().words.clone(),
        bpm: app.value(ControlId::Bpm),
        volume: app.volume(),
        from,
        open,
    }]
}

/// A title a person can tell apart from the others: "Clair de Lune continued, seed 42, take 2".
fn piece_title(app: &App) -> String {
    let what = match &app.piece().title {
        Some(song) => format!("{song} continued"),
        None => "new piece".to_string(),
    };
    let take = match app.takes.made() {
        1 => String::new(),
        _ => format!(", take {}", app.takes.chosen + 1),
    };
    format!("{what}, seed {}{take}", app.value(ControlId::Seed) as u64)
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

pub(super) fn move_selection(app: &mut App, by: isize) {
    match app.focus {
        Focus::Controls => app.selected_control = app.selected_control.moved(by),
        Focus::Menu => {
            let n = Action::ALL.len() as isize;
            app.selected_action = (app.selected_action as isize + by).rem_euclid(n) as usize;
        }
    }
}

/// What the status line says of the selection.
pub(super) fn selection_note(app: &App) -> String {
    match app.selection {
        Some(bars) => format!("{bars} selected: r regenerates them, Esc clears"),
        None => "no bars selected".to_string(),
    }
}

/// Whether the generation running makes words that can play as they come (regenerated bars
/// come back whole, inside the piece).
pub(super) fn streams(app: &App) -> bool {
    matches!(
        app.gen,
        GenState::Running {
            regenerating: None,
            ..
        }
    )
}
