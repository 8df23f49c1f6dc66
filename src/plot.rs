//! Small standalone SVG drawings, for the README and for anyone without a plotting stack: the
//! loss curves of a training log (`log.csv`) and the piano roll of a piece.

use crate::music::analysis::pitch_name;
use crate::music::notes::{end_step, Note, STEPS_PER_BAR};
use anyhow::{bail, Context, Result};
use std::fmt::Write;

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

/// An SVG line chart of training and validation loss against words seen (millions).
pub fn loss_svg(rows: &[LogRow], title: &str) -> String {
    let (w, h, left, right, top, bottom) = (640.0, 400.0, 60.0, 20.0, 40.0, 50.0);
    let x_max = rows.iter().map(|r| r.tokens).fold(1.0, f64::max);
    let losses = rows
        .iter()
        .flat_map(|r| [r.train, r.val])
        .filter(|v| v.is_finite());
    let (lo, hi) = losses.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let (y_min, y_max) = ((lo * 10.0).floor() / 10.0, (hi * 10.0).ceil() / 10.0 + 0.05);
    let px = |x: f64| left + (w - left - right) * x / x_max;
    let py = |y: f64| top + (h - top - bottom) * (y_max - y) / (y_max - y_min);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
        w / 2.0,
        xml_escape(title)
    );
    for i in 0..=5 {
        let x = x_max * i as f64 / 5.0;
        let y = y_min + (y_max - y_min) * i as f64 / 5.0;
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" y1="{top}" x2="{0:.1}" y2="{1}" stroke="#eee"/><text x="{0:.1}" y="{2}" text-anchor="middle">{3:.2}</text>"##,
            px(x),
            h - bottom,
            h - bottom + 16.0,
            x / 1e6
        );
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="#eee"/><text x="{2}" y="{3:.1}" text-anchor="end">{4:.2}</text>"##,
            py(y),
            w - right,
            left - 6.0,
            py(y) + 4.0,
            y
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">words seen (millions)</text><text x="14" y="{}" text-anchor="middle" transform="rotate(-90 14 {})">loss (nats/word)</text>"#,
        (w + left) / 2.0,
        h - 10.0,
        h / 2.0,
        h / 2.0
    );
    let series = [
        (
            "train",
            "#1f77b4",
            rows.iter().map(|r| r.train).collect::<Vec<_>>(),
        ),
        (
            "validation",
            "#d62728",
            rows.iter().map(|r| r.val).collect(),
        ),
    ];
    for (i, (name, colour, values)) in series.iter().enumerate() {
        let points: Vec<String> = rows
            .iter()
            .zip(values)
            .filter(|(_, v)| v.is_finite())
            .map(|(r, v)| format!("{:.1},{:.1}", px(r.tokens), py(*v)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        let ly = top + 16.0 * (i as f64 + 1.0);
        let _ = writeln!(
            s,
            r#"<line x1="{0}" y1="{ly}" x2="{1}" y2="{ly}" stroke="{colour}" stroke-width="2"/><text x="{2}" y="{3}">{name}</text>"#,
            w - right - 110.0,
            w - right - 90.0,
            w - right - 84.0,
            ly + 4.0
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Colours of the prompt's notes and of the model's in [`roll_svg`].
pub const PROMPT_COLOUR: &str = "#2858c8";
pub const MODEL_COLOUR: &str = "#eb821e";

/// A piano roll: time left to right (2 px a sixteenth), pitch bottom to top (4 px a semitone),
/// a grey line every bar of 4/4 and under every C, labelled. The first `prompt_notes` of `notes`
/// are drawn as the prompt's, the rest as the model's. A re-struck note shows as a gap.
pub fn roll_svg(notes: &[Note], prompt_notes: usize, title: &str) -> String {
    let (step_px, pitch_px, left, top) = (2.0, 4.0, 34.0, 30.0);
    let end = end_step(notes).max(1);
    let lo = notes
        .iter()
        .map(|n| n.pitch)
        .min()
        .unwrap_or(60)
        .saturating_sub(2);
    let hi = notes
        .iter()
        .map(|n| n.pitch)
        .max()
        .unwrap_or(60)
        .saturating_add(2);
    let (plot_w, plot_h) = (end as f64 * step_px, (hi - lo + 1) as f64 * pitch_px);
    let (w, h) = (left + plot_w + 10.0, top + plot_h + 10.0);
    // The top edge of a pitch's row.
    let y = |pitch: u8| top + (hi - pitch) as f64 * pitch_px;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="10">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="18" font-size="12">{}</text>"#,
        xml_escape(title)
    );
    // A legend after the title: the prompt's colour only where there is a prompt.
    let legend = [("prompt", PROMPT_COLOUR), ("model", MODEL_COLOUR)];
    let shown = legend
        .iter()
        .filter(|(name, _)| *name == "model" || prompt_notes > 0);
    for (k, (name, colour)) in shown.enumerate() {
        let x = left + 8.0 * title.chars().count() as f64 + 20.0 + 70.0 * k as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="10" width="10" height="8" fill="{colour}"/><text x="{}" y="18">{name}</text>"#,
            x + 14.0
        );
    }
    for bar in (0..end).step_by(STEPS_PER_BAR as usize) {
        let x = left + bar as f64 * step_px;
        let _ = writeln!(
            s,
            r##"<line x1="{x}" y1="{top}" x2="{x}" y2="{}" stroke="#ccc"/>"##,
            top + plot_h
        );
    }
    for pitch in (lo..=hi).filter(|p| p % 12 == 0) {
        let under = y(pitch) + pitch_px;
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{under}" x2="{}" y2="{under}" stroke="#ccc"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            left + plot_w,
            left - 4.0,
            under + 3.0,
            pitch_name(pitch)
        );
    }
    for (i, n) in notes.iter().enumerate() {
        let colour = if i < prompt_notes {
            PROMPT_COLOUR
        } else {
            MODEL_COLOUR
        };
        // One pixel short of the note's end, so that a re-struck pitch shows a gap.
        let width = (n.duration as f64 * step_px - 1.0).max(1.0);
        let _ = writeln!(
            s,
            r#"<rect x="{}" y="{}" width="{width}" height="{}" fill="{colour}"/>"#,
            left + n.onset as f64 * step_px,
            y(n.pitch),
            pitch_px - 1.0
        );
    }
    s.push_str("</svg>\n");
    s
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "step,train_loss,val_loss,lr,tokens,seconds\n\
        0,5.0,5.1,1e-4,0,1.0\n\
        50,2.0,2.5,1e-3,1000000,10.0\n\
        100,1.5,2.0,1e-4,2000000,20.0\n";

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
        let svg = loss_svg(&read_log(LOG).unwrap(), "small <model>");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("small &lt;model&gt;"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        // Validation starts high at the left edge and ends lower at the right edge (2M words).
        let line = svg
            .lines()
            .find(|l| l.contains("#d62728\" stroke-width=\"2\" points"))
            .unwrap();
        let points: Vec<(f64, f64)> = line
            .split('"')
            .nth(7)
            .unwrap()
            .split(' ')
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        assert_eq!(points.len(), 3);
        let ((x0, y0), (x2, y2)) = (points[0], points[2]);
        assert_eq!((x0, x2), (60.0, 620.0));
        assert!(40.0 <= y0 && y0 < y2 && y2 <= 350.0, "{points:?}");
        assert!(svg.contains(">2.00</text>"), "x ticks in millions");
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
        let svg = roll_svg(&notes, 3, "a & b");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a &amp; b"));
        let rects: Vec<&str> = svg
            .lines()
            .filter(|l| l.starts_with("<rect x=") && !l.contains("<text"))
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
        assert_eq!(svg.matches(r##"stroke="#ccc""##).count(), 4);
        assert!(svg.contains(">prompt</text>") && svg.contains(">model</text>"));
        assert!(!roll_svg(&notes, 0, "").contains(">prompt</text>"));
        assert!(svg.contains(">C4</text>") && svg.contains(">C5</text>"));
    }
}
