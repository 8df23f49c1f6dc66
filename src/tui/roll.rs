//! The piano roll widget: time across, pitch up, two pitches per terminal row (half blocks), the
//! prompt in one colour and the new music in another, C labels on the left, a playhead, and on
//! the top row the bar numbers, with the bars selected to regenerate marked there and behind
//! the notes.

use crate::music::notes::{Note, STEPS_PER_BAR};
use crate::music::words::{MAX_PITCH, MIN_PITCH};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::widgets::Widget;

pub const PROMPT_COLOR: Color = Color::Cyan;
pub const NEW_COLOR: Color = Color::Yellow;
const PLAYHEAD_COLOR: Color = Color::Red;
/// Behind the selected bars (a dark grey that 16-colour terminals also have).
pub const SELECTION_COLOR: Color = Color::DarkGray;
const RULER_COLOR: Color = Color::Gray;
/// Columns taken by the pitch axis ("C4 ").
pub const AXIS_WIDTH: u16 = 4;

/// A piano roll of notes; `prompt_notes` of them (the first, in word order) are the prompt.
pub struct PianoRoll<'a> {
    pub notes: &'a [Note],
    pub prompt_notes: usize,
    /// First grid step shown.
    pub scroll: u64,
    /// Grid steps per column.
    pub zoom: u32,
    /// Grid step of the playhead, if playing.
    pub playhead: Option<u64>,
    /// The grid steps of the bars selected, if any.
    pub selection: Option<std::ops::Range<u64>>,
    /// Notes starting in these steps are new too (bars regenerated in place).
    pub new_span: Option<std::ops::Range<u64>>,
}

/// The bar ruler: each bar's number where its first step falls, as far as the numbers fit
/// (one column apart at least), on the selection's colour inside it.
fn draw_ruler(roll: &PianoRoll, area: Rect, buf: &mut Buffer) {
    let zoom = roll.zoom.max(1) as u64;
    let cols = area.width;
    let mut free_from = 0u16;
    for col in 0..cols {
        let from = roll.scroll + col as u64 * zoom;
        let to = from + zoom;
        let selected = roll
            .selection
            .as_ref()
            .is_some_and(|s| s.start < to && from < s.end);
        let cell = &mut buf[(area.x + col, area.y)];
        if selected {
            cell.set_bg(SELECTION_COLOR);
        }
        // The column holding a bar's first step.
        let line = from.div_ceil(STEPS_PER_BAR) * STEPS_PER_BAR;
        if line >= to || col < free_from {
            continue;
        }
        let label = (line / STEPS_PER_BAR + 1).to_string();
        if col as usize + label.len() > cols as usize {
            continue;
        }
        let style = Style::default().fg(RULER_COLOR);
        for (i, ch) in label.chars().enumerate() {
            let cell = &mut buf[(area.x + col + i as u16, area.y)];
            cell.set_char(ch).set_style(style);
        }
        free_from = col + label.len() as u16 + 1;
    }
}

/// The pitch range a roll shows: the notes' range with a margin, at least two octaves, at most
/// what fits, inside the piano.
pub fn pitch_range(notes: &[Note], rows: u16) -> (u8, u8) {
    let fits = (rows as i32 * 2).max(2);
    let (min, max) = (MIN_PITCH as i32, MAX_PITCH as i32);
    let (lo, hi) = if notes.is_empty() {
        (48, 84)
    } else {
        let lo = notes.iter().map(|n| n.pitch).min().unwrap_or(60) as i32 - 2;
        let hi = notes.iter().map(|n| n.pitch).max().unwrap_or(60) as i32 + 2;
        (lo, hi)
    };
    let (mut lo, mut hi) = (lo.max(min), hi.min(max));
    hi = hi.max(lo + 24).min(max);
    if hi - lo + 1 > fits {
        let mid = (lo + hi) / 2;
        lo = mid - fits / 2;
        hi = lo + fits - 1;
    }
    // Fill the rows: grow downwards first, then up, inside the piano.
    while hi - lo + 1 < fits && (lo > min || hi < max) {
        if lo > min {
            lo -= 1;
        } else {
            hi += 1;
        }
        if hi - lo + 1 < fits && hi < max {
            hi += 1;
        }
    }
    (lo.clamp(min, max) as u8, hi.clamp(min, max) as u8)
}

/// Name of a C pitch for the axis (MIDI 60 = C4).
fn c_label(pitch: u8) -> Option<String> {
    pitch
        .is_multiple_of(12)
        .then(|| format!("C{}", pitch as i32 / 12 - 1))
}

impl Widget for PianoRoll<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.width <= AXIS_WIDTH || area.height < 2 {
            return;
        }
        let ruler = Rect::new(area.x + AXIS_WIDTH, area.y, area.width - AXIS_WIDTH, 1);
        draw_ruler(&self, ruler, buf);
        let area = Rect::new(area.x, area.y + 1, area.width, area.height - 1);
        let rows = area.height;
        let cols = area.width - AXIS_WIDTH;
        let (lo, hi) = pitch_range(self.notes, rows);
        let zoom = self.zoom.max(1) as u64;
        // cell[row][col] = colour of the upper and lower half (None = silent).
        let mut cells = vec![[None::<Color>; 2]; rows as usize * cols as usize];
        for (i, n) in self.notes.iter().enumerate() {
            if n.pitch < lo || n.pitch > hi {
                continue;
            }
            let renewed = self.new_span.as_ref().is_some_and(|s| s.contains(&n.onset));
            let colour = if i < self.prompt_notes && !renewed {
                PROMPT_COLOR
            } else {
                NEW_COLOR
            };
            let from = n.onset.max(self.scroll);
            let to = n.onset + n.duration as u64; // exclusive
            if to <= self.scroll {
                continue;
            }
            let first_col = (from - self.scroll) / zoom;
            let last_col = (to - 1 - self.scroll) / zoom;
            // Highest pitch on the top row; two pitches a row.
            let from_top = (hi - n.pitch) as usize;
            let (row, half) = (from_top / 2, from_top % 2);
            if row >= rows as usize {
                continue;
            }
            for col in first_col..=last_col.min(cols as u64 - 1) {
                if col >= cols as u64 {
                    break;
                }
                cells[row * cols as usize + col as usize][half] = Some(colour);
            }
        }
        for row in 0..rows {
            let top_pitch = hi as i32 - 2 * row as i32;
            let label = [top_pitch, top_pitch - 1]
                .into_iter()
                .filter(|&p| (MIN_PITCH as i32..=MAX_PITCH as i32).contains(&p))
                .find_map(|p| c_label(p as u8));
            if let Some(label) = label {
                buf.set_string(
                    area.x,
                    area.y + row,
                    label,
                    Style::default().fg(Color::DarkGray),
                );
            }
            for col in 0..cols {
                let [upper, lower] = cells[row as usize * cols as usize + col as usize];
                let cell = &mut buf[(area.x + AXIS_WIDTH + col, area.y + row)];
                match (upper, lower) {
                    (Some(u), Some(l)) if u == l => {
                        cell.set_char('█').set_fg(u);
                    }
                    (Some(u), Some(l)) => {
                        cell.set_char('▀').set_fg(u).set_bg(l);
                    }
                    (Some(u), None) => {
                        cell.set_char('▀').set_fg(u);
                    }
                    (None, Some(l)) => {
                        cell.set_char('▄').set_fg(l);
                    }
                    (None, None) => {}
                }
            }
        }
        if let Some(s) = &self.selection {
            for col in 0..cols {
                let from = self.scroll + col as u64 * zoom;
                if s.start < from + zoom && from < s.end {
                    for row in 0..rows {
                        let cell = &mut buf[(area.x + AXIS_WIDTH + col, area.y + row)];
                        if cell.bg == Color::Reset {
                            cell.set_bg(SELECTION_COLOR);
                        }
                    }
                }
            }
        }
        if let Some(step) = self.playhead {
            if step >= self.scroll && (step - self.scroll) / zoom < cols as u64 {
                let col = ((step - self.scroll) / zoom) as u16;
                for row in 0..rows {
                    let cell = &mut buf[(area.x + AXIS_WIDTH + col, area.y + row)];
                    if cell.symbol() == " " {
                        cell.set_char('│').set_fg(PLAYHEAD_COLOR);
                    } else {
                        cell.set_bg(PLAYHEAD_COLOR);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_fits_rows_and_the_piano() {
        assert_eq!(pitch_range(&[], 18), (48, 83));
        let n = |pitch| Note {
            onset: 0,
            pitch,
            duration: 1,
        };
        let (lo, hi) = pitch_range(&[n(21), n(108)], 10);
        assert_eq!(hi - lo + 1, 20);
        let (lo, hi) = pitch_range(&[n(22)], 40);
        assert_eq!((lo, hi), (21, 100));
    }
}
