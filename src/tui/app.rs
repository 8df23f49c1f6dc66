//! The TUI's `update`: everything that can happen is a [`Message`]; `update` changes the [`App`]
//! and returns [`Effect`]s for the runtime to carry out (start a generation, play, save). No
//! terminal, thread or model is touched here, so key sequences can be tested directly. The state
//! and its messages are [`super::state`]'s (re-exported here); the parts of `update` for takes,
//! answers, playing while made, the menu and the mouse are modules of their own below this one.

use super::act::{begin_run, changed, move_selection, play_from, selection_note, start};
use super::keys::Command;
use super::menu::choose;
use super::mouse::PointerCommand;
use super::state::Stream;
use super::{answer, mouse, stream, takes};
use crate::music::notes::{from_words, STEPS_PER_BAR};
use crate::sample::infill::Bars;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use std::path::PathBuf;
use std::time::Duration;

pub use super::controls::{Control, ControlId, Controls, ScaleChoice};
pub use super::state::{
    Action, Answering, App, Effect, Environment, Focus, GenState, Message, PathInput, Piece,
    PromptSource, Takes, STEPS_PER_WORD,
};

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
        Message::Mouse(event, at) => mouse::commands(app, event, at)
            .into_iter()
            .flat_map(|command| run_pointer(app, command))
            .collect(),
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
                } => app.piece().title.clone(),
                _ => prompt.title,
            };
            let piece = Piece {
                prompt_len: prompt.words.len(),
                words: prompt.words,
                title,
            };
            let takes = app.running_takes;
            app.takes.begin(piece, takes);
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
                let before = app.history.pop().unwrap_or_default();
                app.show_only(before);
                app.gen = match error {
                    Some(e) => GenState::Failed(e),
                    None => GenState::Idle,
                };
                app.toast = Some("regeneration cancelled: the bars are as they were".into());
                return Vec::new();
            }
            if let Some(words) = words {
                takes::finish(app, words, regenerated.is_some());
                made = app
                    .piece()
                    .words
                    .len()
                    .saturating_sub(app.piece().prompt_len);
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
                    music_seconds: app.music_seconds(),
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
        from_words(&app.piece().words[..app.piece().prompt_len.min(app.piece().words.len())]).end;
    let first_new = from_words(&app.piece().words)
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

/// What a pointer command does: a key's command as the key does it (without Shift), or what
/// only a pointer says.
fn run_pointer(app: &mut App, command: PointerCommand) -> Vec<Effect> {
    match command {
        PointerCommand::Key(command) => run_command(
            app,
            command,
            &KeyEvent::new(KeyCode::Null, KeyModifiers::NONE),
        ),
        PointerCommand::CloseHelp => {
            app.help_open = false;
            Vec::new()
        }
        PointerCommand::SelectAction { index, at, double } => {
            app.focus = Focus::Menu;
            app.selected_action = index;
            app.last_click = (!double).then_some((index, at));
            Vec::new()
        }
        PointerCommand::Focus(focus) => {
            app.focus = focus;
            Vec::new()
        }
        PointerCommand::SelectControl(id) => {
            app.focus = Focus::Controls;
            app.selected_control = id;
            Vec::new()
        }
        PointerCommand::SetControl { id, ratio, drag } => {
            if drag {
                app.dragging = Some(id);
            }
            let before = app.controls[id].value;
            app.controls[id].set_ratio(ratio);
            if app.controls[id].value == before {
                return Vec::new();
            }
            changed(app, id)
        }
        PointerCommand::MovePlayhead(step) => {
            app.drag_bar = Some((step / STEPS_PER_BAR + 1) as u32);
            let seconds = step as f64 * app.seconds_per_step();
            app.play_from = seconds;
            match app.playing {
                Some(_) => play_from(app, seconds),
                None => Vec::new(),
            }
        }
        PointerCommand::SelectBars { from, to } => {
            app.selection = Some(Bars {
                first: from.min(to),
                last: from.max(to),
            });
            app.toast = Some(selection_note(app));
            Vec::new()
        }
        PointerCommand::Release => {
            app.dragging = None;
            app.drag_bar = None;
            Vec::new()
        }
        PointerCommand::ScrollTo(step) => {
            app.scroll = step;
            Vec::new()
        }
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

/// The bars of the piece on screen (at least one).
fn piece_bars(app: &App) -> u32 {
    from_words(&app.piece().words)
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
    if let Err(e) = crate::sample::infill::check(&app.piece().words, bars) {
        app.toast = Some(format!("{e:#}"));
        return Vec::new();
    }
    app.history.push(app.piece().clone());
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
        words: app.piece().words.clone(),
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

fn save(app: &mut App, wav: bool) -> Vec<Effect> {
    if app.piece().words.len() <= 2 {
        app.toast = Some("nothing to save yet".into());
        return Vec::new();
    }
    let words = app.piece().words.clone();
    let bpm = app.value(ControlId::Bpm);
    vec![if wav {
        Effect::SaveWav { words, bpm }
    } else {
        Effect::SaveMidi { words, bpm }
    }]
}
