//! Where each part of the screen is, for a terminal size (plain values in, rectangles out): one
//! function both the drawing ([`super::view`]) and the mouse ([`super::mouse`]) read, so a click
//! lands on what was drawn.
//!
//! From [`WIDE_WIDTH`] columns the controls show their ranges in a 44-column panel; below it
//! (80x24, the usual terminal) they take one short line each in a 30-column panel, and the piano
//! roll gets the rest: 50 of 80 columns. Where the controls do not all fit above the menu (24
//! rows and fewer), their box shows the ones around the selected control and scrolls with it.

use super::controls::ControlId;
use super::roll::AXIS_WIDTH;
use super::state::Action;
use ratatui::layout::{Constraint, Layout, Rect};

/// The smallest terminal the layout fits in.
pub const MIN_WIDTH: u16 = 72;
pub const MIN_HEIGHT: u16 = 22;
/// From this width on, the wide panel.
pub const WIDE_WIDTH: u16 = 100;
const WIDE_PANEL: u16 = 44;
const COMPACT_PANEL: u16 = 30;
/// Columns of a control's name, before its gauge.
pub const NAME_WIDTH: u16 = 11;

/// The parts of the screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Areas {
    pub title: Rect,
    /// The controls' box (borders included): one line per control from its second row.
    pub controls: Rect,
    /// Whether the controls box has the line estimating the length below the controls.
    pub estimate: bool,
    /// The menu's box: one line per action from its second row.
    pub menu: Rect,
    /// The piano roll's box.
    pub roll: Rect,
    pub progress: Rect,
    pub status: Rect,
    /// The wide panel, with ranges, or the compact one.
    pub wide: bool,
}

impl Areas {
    /// The parts of a terminal of `area`; `None` below [`MIN_WIDTH`] x [`MIN_HEIGHT`].
    pub fn of(area: Rect) -> Option<Areas> {
        if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
            return None;
        }
        let [title, body, progress, status] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(10),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(area);
        let wide = area.width >= WIDE_WIDTH;
        let panel = if wide { WIDE_PANEL } else { COMPACT_PANEL };
        let [left, roll] =
            Layout::horizontal([Constraint::Length(panel), Constraint::Min(20)]).areas(body);
        let controls = ControlId::ALL.len() as u16 + 2;
        // The menu's box with its line saying why an action is unavailable.
        let menu = Action::ALL.len() as u16 + 3;
        // The menu keeps its rows; the controls take what is left and scroll in it, below
        // the line of the estimate where a control fits beside it.
        let room = left.height.saturating_sub(menu).max(3);
        let estimate = room >= 4;
        let [controls, menu] = Layout::vertical([
            Constraint::Length((controls + u16::from(estimate)).min(room)),
            Constraint::Min(3),
        ])
        .areas(left);
        Some(Areas {
            title,
            controls,
            estimate,
            menu,
            roll,
            progress,
            status,
            wide,
        })
    }

    /// Columns of a control's gauge.
    pub fn gauge_width(&self) -> u16 {
        if self.wide {
            12
        } else {
            8
        }
    }

    /// The controls shown (indices into [`ControlId::ALL`]) while `selected` is selected: all
    /// where they fit, else a window around it.
    pub fn visible_controls(&self, selected: ControlId) -> std::ops::Range<usize> {
        let n = ControlId::ALL.len();
        let lines = self
            .controls
            .height
            .saturating_sub(2 + u16::from(self.estimate));
        let rows = (lines as usize).max(1);
        if rows >= n {
            return 0..n;
        }
        let first = selected.position().saturating_sub(rows / 2).min(n - rows);
        first..first + rows
    }

    /// The row of control `id` while `selected` is selected, if it is shown.
    pub fn control_row(&self, id: ControlId, selected: ControlId) -> Option<u16> {
        let shown = self.visible_controls(selected);
        shown
            .contains(&id.position())
            .then(|| self.controls.y + 1 + (id.position() - shown.start) as u16)
    }

    /// The first column of the controls' gauges.
    pub fn gauge_x(&self) -> u16 {
        self.controls.x + 1 + NAME_WIDTH + 1
    }

    /// The control drawn on row `y` while `selected` is selected, if any.
    pub fn control_at(&self, y: u16, selected: ControlId) -> Option<ControlId> {
        let first = self.controls.y + 1;
        let shown = self.visible_controls(selected);
        (y >= first && y < self.controls.bottom().saturating_sub(1))
            .then(|| shown.start + (y - first) as usize)
            .filter(|i| shown.contains(i))
            .map(|i| ControlId::ALL[i])
    }

    /// The action drawn on row `y`, if any.
    pub fn action_at(&self, y: u16) -> Option<usize> {
        let first = self.menu.y + 1;
        (y >= first && y < self.menu.bottom().saturating_sub(1))
            .then(|| (y - first) as usize)
            .filter(|&i| i < Action::ALL.len())
    }

    /// Inside the roll's border.
    pub fn roll_inner(&self) -> Rect {
        Rect::new(
            self.roll.x + 1,
            self.roll.y + 1,
            self.roll.width.saturating_sub(2),
            self.roll.height.saturating_sub(2),
        )
    }

    /// The notes' part of the roll (right of the pitch axis).
    pub fn roll_notes(&self) -> Rect {
        let inner = self.roll_inner();
        Rect::new(
            inner.x + AXIS_WIDTH,
            inner.y,
            inner.width.saturating_sub(AXIS_WIDTH),
            inner.height,
        )
    }
}

/// The start of the takes' line on the roll's bottom border, before the takes made.
pub fn takes_label(count: usize) -> String {
    format!(" Takes {count} (t/T) ")
}

/// Columns of one take's number on that line (" 2 " or "[2]").
pub const TAKE_WIDTH: u16 = 3;

impl Areas {
    /// The take (0-based) whose number is drawn at `(x, y)` on the roll's bottom border, where
    /// `made` takes are listed after [`takes_label`] of `count`.
    pub fn take_at(&self, x: u16, y: u16, count: usize, made: usize) -> Option<usize> {
        let first = self.roll.x + 1 + takes_label(count).chars().count() as u16;
        (made > 1 && y + 1 == self.roll.bottom() && x >= first)
            .then(|| ((x - first) / TAKE_WIDTH) as usize)
            .filter(|&k| k < made)
    }
}

/// Whether `(x, y)` lies in `r`.
pub fn contains(r: Rect, x: u16, y: u16) -> bool {
    x >= r.x && x < r.right() && y >= r.y && y < r.bottom()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_80x24_the_roll_gets_most_of_the_width_and_everything_fits() {
        let a = Areas::of(Rect::new(0, 0, 80, 24)).unwrap();
        assert!(!a.wide);
        assert!(a.roll.width * 10 >= 80 * 6, "roll {} of 80", a.roll.width);
        assert_eq!(a.menu.height, Action::ALL.len() as u16 + 3);
        // The controls scroll there: each is on screen, and on its row, when selected.
        for id in ControlId::ALL {
            let row = a.control_row(id, id).unwrap();
            assert_eq!(a.control_at(row, id), Some(id));
        }
        let shown = a.visible_controls(ControlId::Temperature);
        assert_eq!(shown.start, 0);
        assert!(shown.len() >= 8, "{shown:?}");
        let last = ControlId::ALL[ControlId::ALL.len() - 1];
        assert_eq!(a.visible_controls(last).end, ControlId::ALL.len());
        // From 30 rows every control has its own row, and the estimate its line as at 24.
        assert!(a.estimate);
        let a = Areas::of(Rect::new(0, 0, 80, 30)).unwrap();
        assert!(a.estimate);
        for (i, id) in ControlId::ALL.into_iter().enumerate() {
            let row = a.control_row(id, ControlId::Seed).unwrap();
            assert_eq!(row, a.controls.y + 1 + i as u16);
            assert_eq!(a.control_at(row, ControlId::Temperature), Some(id));
        }
        assert_eq!(a.action_at(a.menu.y + 1), Some(0));
        assert_eq!(a.action_at(a.menu.y), None, "the border");
        // At the smallest size every control and action still has its row.
        let a = Areas::of(Rect::new(0, 0, MIN_WIDTH, MIN_HEIGHT)).unwrap();
        assert!(a.controls.height >= 3);
        assert!(a.menu.height >= Action::ALL.len() as u16 + 2);
        assert!(Areas::of(Rect::new(0, 0, MIN_WIDTH - 1, 40)).is_none());
        // Wide terminals keep the 44-column panel with ranges.
        let a = Areas::of(Rect::new(0, 0, 120, 30)).unwrap();
        assert!(a.wide && a.roll.x == 44);
    }
}
