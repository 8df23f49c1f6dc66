//! Musical statistics of pieces, to compare what a model makes with the corpus it learnt from:
//! pitch, duration, polyphony, notes per beat, fit to a key and repetition of note patterns.
//!
//! Each piece gives one value per [`METRICS`] entry; a set of pieces gives their means and spreads
//! ([`Summary`]), pooled histograms of pitch, duration and polyphony, and how the pieces spread
//! over notes per beat (a mean can hide a few very busy pieces). [`compare`] prints two
//! sets side by side and marks where they differ by half a corpus spread or more.

use crate::music::notes::{end_step, Note, STEPS_PER_BAR, STEPS_PER_QUARTER};
use crate::music::scale::{Mode, Scale, PITCH_CLASSES};
use std::collections::HashSet;
use std::fmt::Write;

/// What each value of [`PieceStats::values`] measures, in order.
pub const METRICS: [&str; 8] = [
    "notes per beat",
    "mean pitch (MIDI)",
    "pitch spread (std, semitones)",
    "mean duration (steps of 1/16)",
    "polyphony (notes sounding)",
    "onsets that are chords (share)",
    "key fit (share in best scale)",
    "repeated 4-onset patterns (share)",
];

/// The metrics of one piece, in the order of [`METRICS`].
#[derive(Clone, Debug, PartialEq)]
pub struct PieceStats {
    pub values: [f64; METRICS.len()],
    /// Notes per beat in each quarter of the piece's time (their mean is `values[0]`), to see
    /// whether a piece grows busier as it goes on.
    pub by_quarter: [f64; 4],
}

/// Pooled counts over a set of pieces.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histograms {
    /// Notes per octave: A0-B0, C1-B1, ..., C8.
    pub octave: [f64; 9],
    /// Notes per duration bin, see [`DURATION_BINS`].
    pub duration: [f64; 7],
    /// Steps with 1, 2, 3, 4, 5 and 6 or more notes sounding (steps of silence not counted).
    pub polyphony: [f64; 6],
    /// Pieces (not notes) per notes-per-beat bin, see [`DENSITY_BINS`].
    pub density: [f64; 7],
}

/// Labels of the histogram bins.
pub const OCTAVE_BINS: [&str; 9] = [
    "A0-B0", "C1-B1", "C2-B2", "C3-B3", "C4-B4", "C5-B5", "C6-B6", "C7-B7", "C8",
];
pub const DURATION_BINS: [&str; 7] = ["1", "2", "3-4", "5-8", "9-16", "17-32", "33+"];
pub const POLYPHONY_BINS: [&str; 6] = ["1", "2", "3", "4", "5", "6+"];
pub const DENSITY_BINS: [&str; 7] = ["under 1", "1-2", "2-3", "3-4", "4-6", "6-8", "8+"];

fn density_bin(notes_per_beat: f64) -> usize {
    const UPPER: [f64; 6] = [1.0, 2.0, 3.0, 4.0, 6.0, 8.0];
    UPPER
        .iter()
        .position(|&u| notes_per_beat < u)
        .unwrap_or(UPPER.len())
}

fn duration_bin(steps: u32) -> usize {
    match steps {
        0..=1 => 0,
        2 => 1,
        3..=4 => 2,
        5..=8 => 3,
        9..=16 => 4,
        17..=32 => 5,
        _ => 6,
    }
}

/// Time spans with the number of notes sounding: (steps, count), in time order, silences as 0.
fn sounding(notes: &[Note]) -> Vec<(u64, usize)> {
    let mut events: Vec<(u64, i64)> = notes
        .iter()
        .flat_map(|n| [(n.onset, 1), (n.onset + n.duration as u64, -1)])
        .collect();
    events.sort_unstable();
    let mut spans = Vec::new();
    let mut count = 0i64;
    for pair in events.windows(2) {
        count += pair[0].1;
        if pair[1].0 > pair[0].0 {
            spans.push((pair[1].0 - pair[0].0, count as usize));
        }
    }
    spans
}

/// The onsets in time order: each the sorted pitches struck and the steps to the next onset.
fn onsets(notes: &[Note]) -> Vec<(Vec<u8>, u64)> {
    let mut sorted: Vec<(u64, u8)> = notes.iter().map(|n| (n.onset, n.pitch)).collect();
    sorted.sort_unstable();
    let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
    for (onset, pitch) in sorted {
        match out.last_mut() {
            Some((t, pitches)) if *t == onset => pitches.push(pitch),
            _ => out.push((onset, vec![pitch])),
        }
    }
    let next: Vec<u64> = out.iter().skip(1).map(|(t, _)| *t).collect();
    out.into_iter()
        .enumerate()
        .map(|(i, (t, pitches))| (pitches, next.get(i).map_or(0, |n| n - t)))
        .collect()
}

/// Share of notes whose pitch class lies in the major scale (or its relative minor) that holds
/// the most of them.
fn key_fit(notes: &[Note]) -> f64 {
    best_scale(notes).map_or(0.0, |(_, share)| share)
}

/// The major scale (or its relative minor, which has the same notes) that holds the most of the
/// notes: its major root's pitch class (0 = C) and the share of notes in it. Ties are broken as
/// [`Scale::best_for`] breaks them: one rule for the roll's title, `describe`, `compare` and the
/// scale lock's "match prompt", so the screen never names two keys for the same notes.
pub fn best_scale(notes: &[Note]) -> Option<(u8, f64)> {
    let (scale, share) = Scale::best_for(notes.iter().map(|n| n.pitch))?;
    let major_root = match scale.mode {
        Mode::Major => scale.tonic,
        Mode::Minor => (scale.tonic + 3) % 12,
    };
    Some((major_root, share))
}

/// "G / Em": a major scale by its root and its relative minor.
pub fn scale_name(root: u8) -> String {
    let minor = (root as usize + 9) % 12;
    format!(
        "{} / {}m",
        PITCH_CLASSES[root as usize % 12],
        PITCH_CLASSES[minor]
    )
}

/// "C4" for MIDI pitch 60.
pub fn pitch_name(pitch: u8) -> String {
    format!(
        "{}{}",
        PITCH_CLASSES[pitch as usize % 12],
        pitch as i32 / 12 - 1
    )
}

/// Figures of a stretch of bars of one piece.
#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    /// Bars, counted from 0, that the section spans: `first_bar..end_bar`.
    pub first_bar: u64,
    pub end_bar: u64,
    /// Notes starting in the section, and how many of them belong to the prompt.
    pub notes: usize,
    pub prompt_notes: usize,
    /// See [`best_scale`]; `None` where no note starts.
    pub scale: Option<(u8, f64)>,
    /// Lowest and highest pitch, longest note in steps (0s where no note starts).
    pub lowest: u8,
    pub highest: u8,
    pub longest: u32,
}

/// Bars of 4/4 the notes span, from step 0 to the end of the last note.
pub fn bars(notes: &[Note]) -> u64 {
    end_step(notes).div_ceil(STEPS_PER_BAR)
}

/// The piece in sections of `bars_per_section` bars (the last may be shorter). The first
/// `prompt_notes` of `notes` are the prompt's; a note belongs to the section it starts in.
pub fn sections(notes: &[Note], prompt_notes: usize, bars_per_section: u64) -> Vec<Section> {
    let per = bars_per_section.max(1);
    let total = bars(notes);
    // One pass to sort the notes into sections: long pieces have many sections.
    let mut parts: Vec<(Vec<Note>, usize)> = vec![(Vec::new(), 0); total.div_ceil(per) as usize];
    for (i, n) in notes.iter().enumerate() {
        let (part, prompt) = &mut parts[(n.onset / (per * STEPS_PER_BAR)) as usize];
        part.push(*n);
        *prompt += usize::from(i < prompt_notes);
    }
    parts
        .into_iter()
        .enumerate()
        .map(|(k, (part, prompt_notes))| Section {
            first_bar: k as u64 * per,
            end_bar: ((k as u64 + 1) * per).min(total),
            notes: part.len(),
            prompt_notes,
            scale: best_scale(&part),
            lowest: part.iter().map(|n| n.pitch).min().unwrap_or(0),
            highest: part.iter().map(|n| n.pitch).max().unwrap_or(0),
            longest: part.iter().map(|n| n.duration).max().unwrap_or(0),
        })
        .collect()
}

/// Share of windows of 4 consecutive onsets (pitches struck and the gaps between them) that
/// repeat, exactly, a window seen earlier in the piece.
fn repetition(onsets: &[(Vec<u8>, u64)]) -> f64 {
    // The last onset's gap to "next" is unknown, so windows end one onset early.
    let windows: Vec<_> = onsets.windows(5).map(|w| &w[..4]).collect();
    if windows.is_empty() {
        return 0.0;
    }
    let mut seen = HashSet::new();
    let repeats = windows.iter().filter(|w| !seen.insert(**w)).count();
    repeats as f64 / windows.len() as f64
}

/// The metrics of a piece; `None` for a piece without notes.
pub fn piece_stats(notes: &[Note]) -> Option<PieceStats> {
    if notes.is_empty() {
        return None;
    }
    let n = notes.len() as f64;
    let pitches: Vec<f64> = notes.iter().map(|x| x.pitch as f64).collect();
    let (mean_pitch, pitch_std) = mean_std(&pitches);
    let mean_duration = notes.iter().map(|x| x.duration as f64).sum::<f64>() / n;
    let first = notes.iter().map(|x| x.onset).min().unwrap_or(0);
    let end = end_step(notes);
    let span = (end - first).max(1);
    let beats = span as f64 / STEPS_PER_QUARTER as f64;
    let mut by_quarter = [0.0; 4];
    for x in notes {
        by_quarter[((x.onset - first) * 4 / span).min(3) as usize] += 1.0;
    }
    by_quarter.iter_mut().for_each(|q| *q /= beats / 4.0);
    let spans = sounding(notes);
    let (weighted, steps) = spans
        .iter()
        .filter(|(_, c)| *c > 0)
        .fold((0.0, 0.0), |(w, s), &(len, c)| {
            (w + (len * c as u64) as f64, s + len as f64)
        });
    let onsets = onsets(notes);
    let chords = onsets.iter().filter(|(p, _)| p.len() > 1).count();
    Some(PieceStats {
        values: [
            n / beats,
            mean_pitch,
            pitch_std,
            mean_duration,
            weighted / steps.max(1.0),
            chords as f64 / onsets.len() as f64,
            key_fit(notes),
            repetition(&onsets),
        ],
        by_quarter,
    })
}

fn mean_std(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
    (mean, var.sqrt())
}

/// A set of pieces in figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Pieces with at least one note.
    pub pieces: usize,
    pub notes: usize,
    /// Per metric of [`METRICS`]: the mean and standard deviation over pieces.
    pub mean: [f64; METRICS.len()],
    pub std: [f64; METRICS.len()],
    /// Pooled over all pieces, as shares that sum to 1 (0s where nothing was counted).
    pub histograms: Histograms,
    /// Mean over pieces of the notes per beat in each quarter of a piece.
    pub density_by_quarter: [f64; 4],
}

/// Summarises pieces given as notes; pieces without notes are left out.
pub fn summarize(pieces: &[Vec<Note>]) -> Summary {
    let stats: Vec<PieceStats> = pieces.iter().filter_map(|p| piece_stats(p)).collect();
    let mut mean = [f64::NAN; METRICS.len()];
    let mut std = [f64::NAN; METRICS.len()];
    for m in 0..METRICS.len() {
        let values: Vec<f64> = stats.iter().map(|s| s.values[m]).collect();
        (mean[m], std[m]) = mean_std(&values);
    }
    let mut h = Histograms::default();
    let mut density_by_quarter = [f64::NAN; 4];
    for (q, mean) in density_by_quarter.iter_mut().enumerate() {
        let values: Vec<f64> = stats.iter().map(|s| s.by_quarter[q]).collect();
        *mean = mean_std(&values).0;
    }
    for s in &stats {
        h.density[density_bin(s.values[0])] += 1.0;
    }
    for notes in pieces {
        for n in notes {
            h.octave[(n.pitch as usize / 12).saturating_sub(1).min(8)] += 1.0;
            h.duration[duration_bin(n.duration)] += 1.0;
        }
        for (len, count) in sounding(notes) {
            if count > 0 {
                h.polyphony[(count - 1).min(5)] += len as f64;
            }
        }
    }
    normalise(&mut h.octave);
    normalise(&mut h.duration);
    normalise(&mut h.polyphony);
    normalise(&mut h.density);
    Summary {
        pieces: stats.len(),
        notes: pieces.iter().map(Vec::len).sum(),
        mean,
        std,
        histograms: h,
        density_by_quarter,
    }
}

fn normalise(bins: &mut [f64]) {
    let total: f64 = bins.iter().sum();
    if total > 0.0 {
        bins.iter_mut().for_each(|b| *b /= total);
    }
}

/// A side-by-side report of `reference` (e.g. the corpus) and `other` (e.g. generated pieces):
/// each metric's mean ± spread, the difference in units of the reference's spread (marked `<<`
/// from 0.5 on), then the histograms in percent and the notes per beat by quarter of a piece.
pub fn compare(reference: (&str, &Summary), other: (&str, &Summary)) -> String {
    let ((ra, a), (rb, b)) = (reference, other);
    let mut out = String::new();
    let head_a = format!("{ra} ({} pieces)", a.pieces);
    let head_b = format!("{rb} ({} pieces)", b.pieces);
    let _ = writeln!(out, "{:<36} {head_a:>20} {head_b:>20}  difference", "");
    for (m, name) in METRICS.iter().enumerate() {
        let difference = b.mean[m] - a.mean[m];
        // A reference with no spread: any difference at all is infinitely many spreads.
        let z = if difference == 0.0 {
            0.0
        } else {
            difference / a.std[m]
        };
        let mark = if z.abs() >= 0.5 { " <<" } else { "" };
        let _ = writeln!(
            out,
            "{name:<36} {:>20} {:>20}  {z:+.2} std{mark}",
            format!("{:.2} ± {:.2}", a.mean[m], a.std[m]),
            format!("{:.2} ± {:.2}", b.mean[m], b.std[m]),
        );
    }
    let tables = [
        (
            "pitch by octave (share of notes)",
            &OCTAVE_BINS[..],
            &a.histograms.octave[..],
            &b.histograms.octave[..],
        ),
        (
            "duration in steps (share of notes)",
            &DURATION_BINS[..],
            &a.histograms.duration[..],
            &b.histograms.duration[..],
        ),
        (
            "notes sounding (share of time)",
            &POLYPHONY_BINS[..],
            &a.histograms.polyphony[..],
            &b.histograms.polyphony[..],
        ),
        (
            "notes per beat (share of pieces)",
            &DENSITY_BINS[..],
            &a.histograms.density[..],
            &b.histograms.density[..],
        ),
    ];
    for (title, labels, ha, hb) in tables {
        let _ = writeln!(out, "\n{title:<36} {ra:>20} {rb:>20}");
        for ((label, x), y) in labels.iter().zip(ha).zip(hb) {
            let _ = writeln!(
                out,
                "  {label:<34} {:>19.1}% {:>19.1}%",
                100.0 * x,
                100.0 * y
            );
        }
    }
    let title = "notes per beat by quarter of a piece";
    let _ = writeln!(out, "\n{title:<36} {ra:>20} {rb:>20}");
    for (q, label) in ["1st", "2nd", "3rd", "4th"].iter().enumerate() {
        let _ = writeln!(
            out,
            "  {label:<34} {:>20.2} {:>20.2}",
            a.density_by_quarter[q], b.density_by_quarter[q]
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(onset: u64, pitch: u8, duration: u32) -> Note {
        Note {
            onset,
            pitch,
            duration,
        }
    }

    #[test]
    fn a_scale_in_quarters_has_exact_figures() {
        // C major up and down again, a quarter note (4 steps) each: 15 notes over 60 steps.
        let pitches = [60, 62, 64, 65, 67, 69, 71, 72, 71, 69, 67, 65, 64, 62, 60];
        let notes: Vec<Note> = pitches
            .iter()
            .enumerate()
            .map(|(i, &p)| note(4 * i as u64, p, 4))
            .collect();
        let s = piece_stats(&notes).unwrap().values;
        assert_eq!(s[0], 1.0, "one note per beat");
        assert_eq!(s[1], 988.0 / 15.0, "mean pitch");
        assert_eq!(s[3], 4.0);
        assert_eq!(s[4], 1.0, "one voice");
        assert_eq!(s[5], 0.0, "no chords");
        assert_eq!(s[6], 1.0, "all in C major");
        assert_eq!(s[7], 0.0, "no 4-onset window repeats");
    }

    #[test]
    fn notes_per_beat_by_quarter_shows_a_piece_growing_busier() {
        // Eight quarter notes, then 32 sixteenths: 40 notes in 16 beats, 4 beats a quarter.
        let notes: Vec<Note> = (0..8)
            .map(|i| note(4 * i, 60, 4))
            .chain((0..32).map(|i| note(32 + i, 67, 1)))
            .collect();
        let s = piece_stats(&notes).unwrap();
        assert_eq!(s.by_quarter, [1.0, 1.0, 4.0, 4.0]);
        assert_eq!(s.values[0], 2.5, "the whole piece's figure is their mean");
        let sum = summarize(&[notes.clone(), notes[..8].to_vec()]);
        assert_eq!(sum.density_by_quarter, [1.0, 1.0, 2.5, 2.5]);
    }

    #[test]
    fn chords_overlaps_and_repeats_are_counted() {
        // A C major triad of 8 steps then a G of 4, played four times: 16 notes over 48 steps.
        let mut notes = Vec::new();
        for bar in 0..4u64 {
            notes.extend([
                note(12 * bar, 72, 8),
                note(12 * bar, 67, 8),
                note(12 * bar, 64, 8),
            ]);
            notes.push(note(12 * bar + 8, 67, 4));
        }
        let s = piece_stats(&notes).unwrap().values;
        assert_eq!(s[0], 16.0 / 12.0, "16 notes in 12 beats");
        assert_eq!(s[4], (3.0 * 8.0 + 4.0) / 12.0, "time-weighted voices");
        assert_eq!(s[5], 0.5, "every other onset is a chord");
        // 8 onsets give 4 windows of 4 (the last onset's gap is open): the 3rd and 4th repeat.
        assert_eq!(s[7], 0.5);
        let sum = summarize(&[notes]);
        assert_eq!(
            sum.histograms.polyphony[..3],
            [16.0 / 48.0, 0.0, 32.0 / 48.0]
        );
        assert_eq!(sum.histograms.duration[2], 0.25, "the G quarters");
        assert_eq!(sum.histograms.octave[5] + sum.histograms.octave[4], 1.0);
        assert_eq!(sum.histograms.density, [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn octaves_duration_bins_and_key_fit_edges() {
        let notes = [
            note(0, 21, 1),
            note(0, 23, 2),
            note(1, 24, 3),
            note(1, 108, 128),
        ];
        let h = summarize(&[notes.to_vec()]).histograms;
        assert_eq!(h.octave, [0.5, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.25]);
        assert_eq!(h.duration, [0.25, 0.25, 0.25, 0.0, 0.0, 0.0, 0.25]);
        // Bins are closed below, open above; 8 and more share the last.
        let bins = [0.0, 0.99, 1.0, 3.99, 4.0, 6.0, 7.99, 8.0, 40.0].map(density_bin);
        assert_eq!(bins, [0, 0, 1, 3, 4, 5, 5, 6, 6]);
        // All 12 pitch classes once: the best scale holds 7 of them.
        let chromatic: Vec<Note> = (0..12).map(|i| note(i, 60 + i as u8, 1)).collect();
        assert_eq!(piece_stats(&chromatic).unwrap().values[6], 7.0 / 12.0);
        assert_eq!(piece_stats(&[]), None);
    }

    #[test]
    fn the_report_marks_large_differences() {
        let steady: Vec<Vec<Note>> = (0..4u8)
            .map(|k| {
                (0..16)
                    .map(|i| note(4 * i, 60 + k + (i % 3) as u8, 4))
                    .collect()
            })
            .collect();
        let busy: Vec<Vec<Note>> = (0..4u8)
            .map(|k| {
                (0..64)
                    .map(|i| note(i, 60 + k + (i % 5) as u8, 1))
                    .collect()
            })
            .collect();
        let report = compare(
            ("corpus", &summarize(&steady)),
            ("model", &summarize(&busy)),
        );
        let line = |name| report.lines().find(|l| l.starts_with(name)).unwrap();
        let beats = line("notes per beat");
        assert!(
            beats.contains("1.00 ± 0.00") && beats.contains("4.00 ± 0.00"),
            "{beats}"
        );
        assert!(beats.ends_with("+inf std <<"), "{beats}");
        assert!(
            line("onsets that are chords").ends_with("+0.00 std"),
            "{report}"
        );
        assert!(report.contains("notes sounding (share of time)"));
        // Per piece: the steady pieces all in 1-2 notes per beat, the busy ones in 4-6.
        assert!(report.contains("notes per beat (share of pieces)"));
        assert!(line("  1-2").contains("100.0%"), "{report}");
        assert!(line("  4-6").ends_with("100.0%"), "{report}");
        assert!(report.contains("corpus (4 pieces)"));
        assert!(report.contains("notes per beat by quarter of a piece"));
        for quarter in ["  1st", "  4th"] {
            let row: Vec<&str> = line(quarter).split_whitespace().collect();
            assert_eq!(row[1..], ["1.00", "4.00"], "{report}");
        }
    }

    #[test]
    fn best_scale_names_the_key_that_holds_the_notes() {
        // G major: G A B C D E F#, and one stray G#.
        let notes: Vec<Note> = [67, 69, 71, 72, 74, 76, 78, 79, 68]
            .iter()
            .enumerate()
            .map(|(i, &p)| note(i as u64, p, 1))
            .collect();
        let (root, share) = best_scale(&notes).unwrap();
        assert_eq!(scale_name(root), "G / Em");
        assert!((share - 8.0 / 9.0).abs() < 1e-12);
        assert_eq!(key_fit(&notes), share);
        assert_eq!(best_scale(&[]), None);
        // A single C fits seven scales: the lowest root wins.
        assert_eq!(best_scale(&[note(0, 60, 1)]), Some((0, 1.0)));
        assert_eq!(
            [21, 60, 61, 108].map(pitch_name),
            ["A0", "C4", "C#4", "C8"].map(String::from)
        );
    }

    #[test]
    fn sections_split_the_piece_by_bars_and_mark_the_prompt() {
        // Bar 1: a prompt chord of C; bar 2: nothing starts; bars 5-6: the model in D, the last
        // note ringing into bar 6.
        let notes = [
            note(0, 60, 4),
            note(0, 64, 4),
            note(4 * 16, 62, 2),
            note(4 * 16 + 2, 66, 24),
        ];
        assert_eq!(bars(&notes), 6);
        let s = sections(&notes, 2, 4);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].first_bar, s[0].end_bar), (0, 4));
        assert_eq!((s[0].notes, s[0].prompt_notes), (2, 2));
        assert_eq!((s[0].lowest, s[0].highest, s[0].longest), (60, 64, 4));
        assert_eq!((s[1].first_bar, s[1].end_bar), (4, 6));
        assert_eq!((s[1].notes, s[1].prompt_notes), (2, 0));
        assert_eq!(
            s[1].scale.map(|(root, _)| scale_name(root)),
            Some("D / Bm".into())
        );
        assert_eq!((s[1].lowest, s[1].highest, s[1].longest), (62, 66, 24));
        // One section a bar: the empty bars are there, without a scale.
        let by_bar = sections(&notes, 2, 1);
        assert_eq!(by_bar.len(), 6);
        assert_eq!((by_bar[1].notes, by_bar[1].scale), (0, None));
        assert!(sections(&[], 0, 4).is_empty());
    }
}
