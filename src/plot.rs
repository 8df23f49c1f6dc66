//! Standalone SVG plots, for the README and for anyone without a plotting stack: the loss curves
//! of a training log (`log.csv`) and the piano roll of a piece. Drawn with plotters' SVG backend,
//! which writes text as SVG text for the viewer to set, so no font file is read.

use crate::music::analysis::pitch_name;
use crate::music::notes::{end_step, Note, STEPS_PER_BAR};
use anyhow::{bail, Context, Result};
use plotters::prelude::*;

/// One evaluation row of `log.csv`: words seen, training loss, validation loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogRow {
    pub tokens: f64,
    pub train: f64,
    pub val: f64,
}

/// Reads `log.csv` as `train` writes it (`step,train_loss,val_loss,lr,tokens,seconds`).
pub fn read_log(text: &str) -> Result<Vec<LogRow>> {
    let mut lines = text.lines();
    let header = lines.next().context("the log is empty")?;
    let cols: Vec<&str> = header.split(',').collect();
    let col = |name| {
        cols.iter()
            .position(|c| c.trim() == name)
            .with_context(|| format!("the log has no {name} column"))
    };
    let (t, tr, va) = (col("tokens")?, col("train_loss")?, col("val_loss")?);
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let num = |c: usize| -> Result<f64> {
            f.get(c)
                .and_then(|v| v.trim().parse().ok())
                .with_context(|| format!("line {} of the log is not a row of numbers", i + 2))
        };
        rows.push(LogRow {
            tokens: num(t)?,
            train: num(tr)?,
            val: num(va)?,
        });
    }
    if rows.is_empty() {
        bail!("the log has no evaluations yet");
    }
    Ok(rows)
}

/// Colours of the training and validation curves in [`loss_svg`], as the SVG writes them.
pub const TRAIN_COLOUR: &str = "#1F77B4";
pub const VAL_COLOUR: &str = "#D62728";
const TRAIN_RGB: RGBColor = rgb(TRAIN_COLOUR);
const VAL_RGB: RGBColor = rgb(VAL_COLOUR);
const GRID: RGBColor = rgb("#E4E4E4");

/// A colour from its `#RRGGBB` form (upper case, as plotters writes it), so that the file can be
/// searched for the same string. Only for constants, where a bad digit fails the build.
const fn rgb(hex: &str) -> RGBColor {
    const fn digit(b: u8) -> u8 {
        match b {
            b'0'..=b'9' => b - b'0',
            _ => b - b'A' + 10,
        }
    }
    let h = hex.as_bytes();
    RGBColor(
        digit(h[1]) << 4 | digit(h[2]),
        digit(h[3]) << 4 | digit(h[4]),
        digit(h[5]) << 4 | digit(h[6]),
    )
}

/// A sans-serif font of `px` pixels. plotters' SVG backend writes a font size 1.24 times smaller
/// than the one it is given (the ratio of its fonts' em to their line height).
fn font(px: f64) -> (&'static str, f64) {
    ("sans-serif", px * 1.24)
}

/// An SVG line chart of training and validation loss against words seen (millions).
pub fn loss_svg(rows: &[LogRow], title: &str) -> Result<String> {
    let x_max = rows.iter().map(|r| r.tokens / 1e6).fold(1e-6, f64::max);
    let losses = rows.iter().flat_map(|r| [r.train, r.val]);
    let (lo, hi) = losses
        .filter(|v| v.is_finite())
        .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (0.0, 1.0) };
    let y_range = (lo * 10.0).floor() / 10.0..(hi * 10.0).ceil() / 10.0 + 0.05;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 400)).into_drawing_area();
        root.fill(&WHITE)?;
        // The plot spans x 60..=620 and y 40..=350; the axes are left to the grid.
        let mut chart = ChartBuilder::on(&root)
            .caption(title, font(14.0))
            .margin(10)
            .margin_top(16)
            .margin_right(19)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..x_max, y_range)?;
        chart
            .configure_mesh()
            .axis_style(TRANSPARENT)
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .label_style(font(12.0))
            // Whole millions without a trailing ".0"; ticks of a short run keep their decimals.
            .x_label_formatter(&|x| format!("{}", (x * 1e3).round() / 1e3))
            .x_desc("words seen (millions)")
            .y_desc("loss (nats/word)")
            .draw()?;
        let series = [("train", TRAIN_RGB, true), ("validation", VAL_RGB, false)];
        for (name, colour, train) in series {
            let points = rows
                .iter()
                .map(|r| (r.tokens / 1e6, if train { r.train } else { r.val }))
                .filter(|(_, v)| v.is_finite());
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 1), (x + 20, y + 1)], colour.filled())
                });
        }
        chart
            .configure_series_labels()
            .label_font(font(12.0))
            .background_style(WHITE)
            .border_style(GRID)
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

/// Colours of the prompt's notes and of the model's in [`roll_svg`], as the SVG writes them.
pub const PROMPT_COLOUR: &str = "#2858C8";
pub const MODEL_COLOUR: &str = "#EB821E";
const BAR_LINE: &str = "#CCCCCC";
const PROMPT_RGB: RGBColor = rgb(PROMPT_COLOUR);
const MODEL_RGB: RGBColor = rgb(MODEL_COLOUR);
const BAR_LINE_RGB: RGBColor = rgb(BAR_LINE);

/// A piano roll: time left to right (2 px a sixteenth), pitch bottom to top (4 px a semitone),
/// a grey line at every bar of 4/4 (numbered below) and under every C (named at the left). The
/// first `prompt_notes` of `notes` are drawn as the prompt's, the rest as the model's. A re-struck
/// note shows as a gap.
pub fn roll_svg(notes: &[Note], prompt_notes: usize, title: &str) -> Result<String> {
    const STEP_PX: u32 = 2;
    const PITCH_PX: u32 = 4;
    let (left, top, right, bottom) = (34, 30, 10, 20);
    let end = end_step(notes).max(1);
    let pitches = notes.iter().map(|n| n.pitch);
    let lo = pitches.clone().min().unwrap_or(60).saturating_sub(2);
    let hi = pitches.max().unwrap_or(60).saturating_add(2);
    let plot_w = end as u32 * STEP_PX;
    let plot_h = (hi - lo + 1) as u32 * PITCH_PX;
    // Title and legend share the top margin: the picture is wide enough for both.
    let legend = [("prompt", PROMPT_RGB), ("model", MODEL_RGB)];
    let shown: Vec<_> = legend
        .iter()
        .filter(|(name, _)| *name == "model" || prompt_notes > 0)
        .collect();
    let title_w = 7 * title.chars().count() as u32 + 20;
    let w = (left + plot_w + right).max(left + title_w + 70 * shown.len() as u32);
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (w, top + plot_h + bottom)).into_drawing_area();
        root.fill(&WHITE)?;
        root.draw(&Text::new(title, (left as i32, 9), font(12.0)))?;
        for (k, &&(name, colour)) in shown.iter().enumerate() {
            let x = (left + title_w + 70 * k as u32) as i32;
            root.draw(&Rectangle::new([(x, 10), (x + 10, 18)], colour.filled()))?;
            root.draw(&Text::new(name, (x + 14, 10), font(10.0)))?;
        }
        // One unit a step across and a semitone up; pitch `p` fills `p..p + 1`.
        let bars = (0..end).step_by(STEPS_PER_BAR as usize).collect();
        let cs = (lo as i32..=hi as i32).filter(|p| p % 12 == 0).collect();
        let x_axis = (0..end).with_key_points(bars);
        let y_axis = (lo as i32..hi as i32 + 1).with_key_points(cs);
        let mut chart = ChartBuilder::on(&root)
            .margin_top(top)
            // plotters maps a range onto the first to the last pixel of its area: one pixel more
            // makes a step exactly STEP_PX wide.
            .margin_right(w - left - plot_w - 1)
            .x_label_area_size(bottom)
            .y_label_area_size(left)
            .build_cartesian_2d(x_axis, y_axis)?;
        let bar_label = |step: &u64| format!("{}", step / STEPS_PER_BAR + 1);
        let c_label = |pitch: &i32| pitch_name(*pitch as u8);
        chart
            .configure_mesh()
            .axis_style(TRANSPARENT)
            // Invisible ticks (the axes are transparent) that keep the labels off the plot.
            .set_all_tick_mark_size(4)
            .bold_line_style(BAR_LINE_RGB)
            .label_style(font(10.0))
            .x_label_formatter(&bar_label)
            .y_label_formatter(&c_label)
            .draw()?;
        // Placed at the top left of the note's cell, sized in pixels: one short of the note's
        // end, so that a re-struck pitch shows a gap, and one short of the next row.
        let (prompt, model) = (PROMPT_RGB.filled(), MODEL_RGB.filled());
        let rects = notes.iter().enumerate().map(|(i, n)| {
            let style = if i < prompt_notes { prompt } else { model };
            let width = (n.duration * STEP_PX).max(2) as i32 - 1;
            let cell = EmptyElement::at((n.onset, n.pitch as i32 + 1));
            cell + Rectangle::new([(0, 0), (width, PITCH_PX as i32 - 1)], style)
        });
        chart.draw_series(rects)?;
        root.present()?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "step,train_loss,val_loss,lr,tokens,seconds\n\
        0,5.0,5.1,1e-4,0,1.0\n\
        50,2.0,2.5,1e-3,1000000,10.0\n\
        100,1.5,2.0,1e-4,2000000,20.0\n";

    /// Whether the SVG has a text element reading `content` (plotters writes it on its own line).
    fn has_text(svg: &str, content: &str) -> bool {
        svg.contains(&format!(">\n{content}\n</text>"))
    }

    #[test]
    fn reads_the_log_train_writes() {
        let rows = read_log(LOG).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[2],
            LogRow {
                tokens: 2e6,
                train: 1.5,
                val: 2.0
            }
        );
        assert!(read_log("step,tokens\n").is_err());
        let err = read_log(&format!("{LOG}7,x,1,1,1,1\n")).unwrap_err();
        assert!(err.to_string().contains("line 5"), "{err}");
    }

    #[test]
    fn the_plot_has_both_curves_in_range() {
        let svg = loss_svg(&read_log(LOG).unwrap(), "small <model>").unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("small &lt;model&gt;"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        // Validation starts high at the left edge and ends lower at the right edge (2M words).
        let line = svg
            .lines()
            .find(|l| l.contains(&format!("{VAL_COLOUR}\" stroke-width=\"2\" points")))
            .unwrap();
        let points: Vec<(f64, f64)> = line
            .split("points=\"")
            .nth(1)
            .and_then(|p| p.split('"').next())
            .unwrap()
            .split_whitespace()
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        assert_eq!(points.len(), 3);
        let ((x0, y0), (x2, y2)) = (points[0], points[2]);
        assert_eq!((x0, x2), (60.0, 620.0));
        assert!(40.0 <= y0 && y0 < y2 && y2 <= 350.0, "{points:?}");
        assert!(has_text(&svg, "2"), "x ticks in millions");
    }

    #[test]
    fn the_roll_draws_every_note_where_it_sounds() {
        let note = |onset, pitch, duration| Note {
            onset,
            pitch,
            duration,
        };
        // A C major chord (the prompt) for a bar, then a G re-struck twice in the second bar.
        let notes = [
            note(0, 72, 16),
            note(0, 64, 16),
            note(0, 60, 16),
            note(16, 67, 4),
            note(20, 67, 4),
        ];
        let svg = roll_svg(&notes, 3, "a & b").unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a &amp; b"));
        // Notes are the rects one row (3 px) high; the legend's are 8.
        let rects: Vec<&str> = svg
            .lines()
            .filter(|l| l.starts_with("<rect x=") && l.contains(r#"height="3""#))
            .collect();
        assert_eq!(rects.len(), 5);
        assert_eq!(
            rects.iter().filter(|r| r.contains(PROMPT_COLOUR)).count(),
            3
        );
        assert_eq!(rects.iter().filter(|r| r.contains(MODEL_COLOUR)).count(), 2);
        // Pitches 58..=74 are drawn, 4 px each from y = 30: C5 (72) at 30 + 2 * 4.
        assert!(
            rects[0].contains(r#"x="34" y="38" width="31""#),
            "{}",
            rects[0]
        );
        // The second G starts where the first ends, one pixel after the first's right edge.
        assert!(
            rects[3].contains(r#"x="66" y="58" width="7""#),
            "{}",
            rects[3]
        );
        assert!(
            rects[4].contains(r#"x="74" y="58" width="7""#),
            "{}",
            rects[4]
        );
        // Two bar lines (steps 0 and 16) and the C4 and C5 lines, labelled.
        assert_eq!(svg.matches(&format!(r#"stroke="{BAR_LINE}""#)).count(), 4);
        assert!(has_text(&svg, "prompt") && has_text(&svg, "model"));
        assert!(!has_text(&roll_svg(&notes, 0, "").unwrap(), "prompt"));
        assert!(has_text(&svg, "C4") && has_text(&svg, "C5"));
    }
}
