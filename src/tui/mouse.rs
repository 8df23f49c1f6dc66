//! The mouse, as terminal apps such as miditui answer it: click a menu item to select it (double
//! click to run it), click or drag on a gauge to set it, click on the roll to move the playhead
//! (and seek while playing), drag across the roll to select bars to regenerate, click a take's
//! number under the roll to choose it, wheel to scroll the roll in time, Shift or Ctrl with the
//! wheel to zoom. The keyboard does all of this too; the mouse is a shortcut.

use super::act::{changed, move_selection, play_from, selection_note};
use super::layout::{contains, Areas};
use super::menu::choose;
use super::state::{Action, App, Effect, Focus};
use crate::music::notes::STEPS_PER_BAR;
use crate::sample::infill::Bars;
use crossterm::event::{KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use std::time::{Duration, Instant};

/// Two clicks on one menu item closer than this are a double click.
pub const DOUBLE_CLICK: Duration = Duration::from_millis(400);

pub(super) fn on_mouse(app: &mut App, event: MouseEvent, at: Instant) -> Vec<Effect> {
    let Some(areas) = Areas::of(app.size) else {
        return Vec::new();
    };
    if app.path_input.is_some() {
        return Vec::new();
    }
    let (x, y) = (event.column, event.row);
    match event.kind {
        MouseEventKind::Down(MouseButton::Left) if app.help_open => {
            app.help_open = false;
            Vec::new()
        }
        MouseEventKind::Down(MouseButton::Left) => click(app, &areas, x, y, at),
        MouseEventKind::Drag(MouseButton::Left) => match (app.dragging, app.drag_bar) {
            (Some(id), _) => set_from_gauge(app, &areas, id, x),
            (None, Some(from)) => {
                let to = bar_at(app, &areas, x);
                app.selection = Some(Bars {
                    first: from.min(to),
                    last: from.max(to),
                });
                app.toast = Some(selection_note(app));
                Vec::new()
            }
            (None, None) => Vec::new(),
        },
        MouseEventKind::Up(_) => {
            app.dragging = None;
            app.drag_bar = None;
            Vec::new()
        }
        MouseEventKind::ScrollUp | MouseEventKind::ScrollDown => {
            let later = event.kind == MouseEventKind::ScrollDown;
            let zoom = event
                .modifiers
                .intersects(KeyModifiers::SHIFT | KeyModifiers::CONTROL);
            wheel(app, &areas, x, y, later, zoom)
        }
        _ => Vec::new(),
    }
}

fn click(app: &mut App, areas: &Areas, x: u16, y: u16, at: Instant) -> Vec<Effect> {
    if contains(areas.menu, x, y) {
        let Some(i) = areas.action_at(y) else {
            return Vec::new();
        };
        app.focus = Focus::Menu;
        app.selected_action = i;
        let double = app
            .last_click
            .is_some_and(|(j, when)| j == i && at.saturating_duration_since(when) <= DOUBLE_CLICK);
        if double {
            app.last_click = None;
            return choose(app, Action::ALL[i]);
        }
        app.last_click = Some((i, at));
        return Vec::new();
    }
    if contains(areas.controls, x, y) {
        let Some(id) = areas.control_at(y, app.selected_control) else {
            return Vec::new();
        };
        app.focus = Focus::Controls;
        app.selected_control = id;
        let gauge = areas.gauge_x()..areas.gauge_x() + areas.gauge_width();
        if id.has_gauge() && gauge.contains(&x) {
            app.dragging = Some(id);
            return set_from_gauge(app, areas, id, x);
        }
        return Vec::new();
    }
    if let Some(take) = areas.take_at(x, y, app.takes.count, app.takes.made()) {
        return super::takes::choose_take(app, take);
    }
    let notes = areas.roll_notes();
    if contains(notes, x, y) && app.piece().words.len() > 2 {
        let step = step_at(app, areas, x);
        // A drag from here selects bars.
        app.drag_bar = Some(bar_at(app, areas, x));
        let seconds = step as f64 * app.seconds_per_step();
        app.play_from = seconds;
        if app.playing.is_some() {
            return play_from(app, seconds);
        }
    }
    Vec::new()
}

/// The grid step under column `x` of the roll (left or right of it: its first or last column).
fn step_at(app: &App, areas: &Areas, x: u16) -> u64 {
    let notes = areas.roll_notes();
    let col = x.clamp(notes.x, notes.right().saturating_sub(1)) - notes.x;
    app.roll_scroll(notes.width) + col as u64 * app.zoom.max(1) as u64
}

/// The bar (counted from 1) under column `x` of the roll.
fn bar_at(app: &App, areas: &Areas, x: u16) -> u32 {
    (step_at(app, areas, x) / STEPS_PER_BAR + 1) as u32
}

/// Sets control `id` from column `x` of its gauge: the first column is the minimum, the last
/// the maximum; a drag past either end holds there.
fn set_from_gauge(
    app: &mut App,
    areas: &Areas,
    id: super::controls::ControlId,
    x: u16,
) -> Vec<Effect> {
    let last = areas.gauge_width().saturating_sub(1).max(1) as f64;
    let ratio = (x as f64 - areas.gauge_x() as f64) / last;
    let before = app.controls[id].value;
    app.controls[id].set_ratio(ratio);
    if app.controls[id].value == before {
        return Vec::new();
    }
    changed(app, id)
}

fn wheel(app: &mut App, areas: &Areas, x: u16, y: u16, later: bool, zoom: bool) -> Vec<Effect> {
    if contains(areas.roll, x, y) {
        let cols = areas.roll_notes().width;
        if zoom {
            // Wheel down shows more time (zooms out), as scrolling further does.
            app.zoom = if later {
                (app.zoom * 2).min(32)
            } else {
                (app.zoom / 2).max(1)
            };
            return Vec::new();
        }
        // From what is on screen, which may be following the music past `scroll`.
        let shown = app.roll_scroll(cols);
        let by = STEPS_PER_BAR * app.zoom.max(1) as u64;
        app.scroll = if later {
            shown + by
        } else {
            shown.saturating_sub(by)
        };
        return Vec::new();
    }
    if let Some(id) = contains(areas.controls, x, y)
        .then(|| areas.control_at(y, app.selected_control))
        .flatten()
    {
        app.focus = Focus::Controls;
        app.selected_control = id;
        let control = &mut app.controls[id];
        let step = if later { -control.step } else { control.step };
        control.nudge(step);
        return changed(app, id);
    }
    if contains(areas.menu, x, y) {
        app.focus = Focus::Menu;
        move_selection(app, if later { 1 } else { -1 });
    }
    Vec::new()
}
