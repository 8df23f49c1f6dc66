//! A loss plot of a training log (`log.csv`) as a small standalone SVG, for the README and for
//! anyone who wants to see a run without a plotting stack.

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
}
