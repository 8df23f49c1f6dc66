//! The mouse, as terminal apps such as miditui answer it: click a menu item to select it (double
//! click to run it), click or drag on a gauge to set it, click on the roll to move the playhead
//! (and seek while playing), drag across the roll to select bars to regenerate, click a take's
//! number under the roll to choose it, wheel to scroll the roll in time, Shift or Ctrl with the
//! wheel to zoom. The keyboard does all of this too; the mouse is a shortcut. Here an event only
//! becomes commands by where it lands on the screen as drawn ([`PointerCommand`], a key's
//! [`Command`] where there is one); `update` carries them out as it does keys'.

use super::controls::ControlId;
use super::keys::Command;
use super::layout::{contains, Areas};
use super::state::{App, Focus};
use crate::music::notes::STEPS_PER_BAR;
use crossterm::event::{KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use std::time::{Duration, Instant};

/// Two clicks on one menu item closer than this are a double click.
pub const DOUBLE_CLICK: Duration = Duration::from_millis(400);

/// What a pointer event asks `update` for: what a key does, or what only a pointer can say (a
/// place on the screen). `update` carries them out as it carries out keys' commands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PointerCommand {
    /// The same as a key's command (zoom, take N, run the selected menu item, up, down...).
    Key(Command),
    CloseHelp,
    /// Focus the menu on item `index`, clicked at `at`; `double`: the second click of a double
    /// click (a [`Command::Run`] follows it).
    SelectAction {
        index: usize,
        at: Instant,
        double: bool,
    },
    /// Focus the menu or the controls (the wheel over them).
    Focus(Focus),
    /// Focus the controls on this one.
    SelectControl(ControlId),
    /// Set this control to a share of its range, 0 to 1 (a click or drag on its gauge); a
    /// click starts a drag.
    SetControl {
        id: ControlId,
        ratio: f64,
        drag: bool,
    },
    /// Move the playhead to this grid step (seeks while playing); a drag from there selects bars.
    MovePlayhead(u64),
    /// Select bars `from` to `to` (counted from 1; either order).
    SelectBars {
        from: u32,
        to: u32,
    },
    /// The button was let go: drags end.
    Release,
    /// Scroll the roll to start at this grid step (the wheel, from what it shows).
    ScrollTo(u64),
}

/// The commands a pointer event gives, where it lands on the screen as drawn now.
pub(super) fn commands(app: &App, event: MouseEvent, at: Instant) -> Vec<PointerCommand> {
    let Some(areas) = Areas::of(app.size) else {
        return Vec::new();
    };
    if app.path_input.is_some() {
        return Vec::new();
    }
    let (x, y) = (event.column, event.row);
    match event.kind {
        MouseEventKind::Down(MouseButton::Left) if app.help_open => vec![PointerCommand::CloseHelp],
        MouseEventKind::Down(MouseButton::Left) => click(app, &areas, x, y, at),
        MouseEventKind::Drag(MouseButton::Left) => match (app.dragging, app.drag_bar) {
            (Some(id), _) => vec![gauge(&areas, id, x, false)],
            (None, Some(from)) => vec![PointerCommand::SelectBars {
                from,
                to: bar_at(app, &areas, x),
            }],
            (None, None) => Vec::new(),
        },
        MouseEventKind::Up(_) => vec![PointerCommand::Release],
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

fn click(app: &App, areas: &Areas, x: u16, y: u16, at: Instant) -> Vec<PointerCommand> {
    if contains(areas.menu, x, y) {
        let Some(index) = areas.action_at(y) else {
            return Vec::new();
        };
        let double = app.last_click.is_some_and(|(j, when)| {
            j == index && at.saturating_duration_since(when) <= DOUBLE_CLICK
        });
        let mut commands = vec![PointerCommand::SelectAction { index, at, double }];
        if double {
            commands.push(PointerCommand::Key(Command::Run));
        }
        return commands;
    }
    if contains(areas.controls, x, y) {
        let Some(id) = areas.control_at(y, app.selected_control) else {
            return Vec::new();
        };
        let mut commands = vec![PointerCommand::SelectControl(id)];
        let on_gauge = areas.gauge_x()..areas.gauge_x() + areas.gauge_width();
        if id.has_gauge() && on_gauge.contains(&x) {
            commands.push(gauge(areas, id, x, true));
        }
        return commands;
    }
    if let Some(take) = areas.take_at(x, y, app.takes.count, app.takes.made()) {
        return vec![PointerCommand::Key(Command::Take(take as u8 + 1))];
    }
    if contains(areas.roll_notes(), x, y) && app.piece().words.len() > 2 {
        return vec![PointerCommand::MovePlayhead(step_at(app, areas, x))];
    }
    Vec::new()
}

/// Control `id` set from column `x` of its gauge: the first column is the minimum, the last the
/// maximum; a drag past either end holds there. `click`: the press that starts a drag.
fn gauge(areas: &Areas, id: ControlId, x: u16, click: bool) -> PointerCommand {
    let last = areas.gauge_width().saturating_sub(1).max(1) as f64;
    let ratio = (x as f64 - areas.gauge_x() as f64) / last;
    PointerCommand::SetControl {
        id,
        ratio,
        drag: click,
    }
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

fn wheel(app: &App, areas: &Areas, x: u16, y: u16, later: bool, zoom: bool) -> Vec<PointerCommand> {
    if contains(areas.roll, x, y) {
        if zoom {
            // Wheel down shows more time (zooms out), as scrolling further does.
            let zoom = if later {
                Command::ZoomOut
            } else {
                Command::ZoomIn
            };
            return vec![PointerCommand::Key(zoom)];
        }
        // From what is on screen, which may be following the music past `scroll`.
        let shown = app.roll_scroll(areas.roll_notes().width);
        let by = STEPS_PER_BAR * app.zoom.max(1) as u64;
        let to = if later {
            shown + by
        } else {
            shown.saturating_sub(by)
        };
        return vec![PointerCommand::ScrollTo(to)];
    }
    let (up, down) = (Command::Increase, Command::Decrease);
    if let Some(id) = contains(areas.controls, x, y)
        .then(|| areas.control_at(y, app.selected_control))
        .flatten()
    {
        // One small step, as the arrow keys take.
        return vec![
            PointerCommand::SelectControl(id),
            PointerCommand::Key(if later { down } else { up }),
        ];
    }
    if contains(areas.menu, x, y) {
        let next = if later { Command::Down } else { Command::Up };
        return vec![
            PointerCommand::Focus(Focus::Menu),
            PointerCommand::Key(next),
        ];
    }
    Vec::new()
}
