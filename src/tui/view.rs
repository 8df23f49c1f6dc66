//! Drawing the app: `view` reads the [`App`] and draws one frame; it changes nothing.

use super::controls::ControlId;
use super::keys::{Command, Keymap};
use super::layout::{takes_label, Areas, NAME_WIDTH};
use super::roll::{PianoRoll, NEW_COLOR, PROMPT_COLOR};
use super::state::{Action, App, Focus, GenState, STEPS_PER_WORD};
use crate::music::analysis::{best_scale, scale_name};
use crate::music::notes::{from_words, Note, STEPS_PER_BAR};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Gauge, Paragraph, Wrap};
use ratatui::Frame;

pub use super::layout::{MIN_HEIGHT, MIN_WIDTH};

pub fn view(app: &App, frame: &mut Frame) {
    let area = frame.area();
    let Some(areas) = Areas::of(area) else {
        let text = format!(
            "Terminal too small ({}x{}): enlarge it to at least {MIN_WIDTH}x{MIN_HEIGHT}. q quits.",
            area.width, area.height
        );
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    };
    draw_title(app, frame, areas.title);
    draw_controls(app, frame, &areas);
    draw_menu(app, frame, areas.menu);
    draw_roll(app, frame, &areas);
    draw_progress(app, frame, areas.progress);
    draw_status(app, frame, areas.status);
    if let Some(input) = &app.path_input {
        let popup = centered(area, 60, 5);
        frame.render_widget(Clear, popup);
        let text = vec![
            Line::from(format!("MIDI file: {}_", input.text)),
            Line::from(Span::styled(
                "Enter continues this file, Esc cancels",
                Style::default().fg(Color::DarkGray),
            )),
        ];
        let block = Block::default()
            .borders(Borders::ALL)
            .title(" Continue file ");
        frame.render_widget(Paragraph::new(text).block(block), popup);
    }
    if app.help_open {
        draw_help(&app.keys, frame, area);
    }
}

fn draw_title(app: &App, frame: &mut Frame, area: Rect) {
    let mut spans = vec![Span::styled(
        " nanotune ",
        Style::default().add_modifier(Modifier::BOLD),
    )];
    spans.push(Span::raw(format!(" model on {} ", app.env.device)));
    if app.env.audio_error.is_some() {
        let play = app.keys.keys_for(Command::PlayStop).first();
        let play = play.map_or("play".to_string(), ToString::to_string);
        spans.push(Span::styled(
            format!(" no audio device: {play} saves a WAV "),
            Style::default().fg(Color::Red),
        ));
    }
    let hints: String = [(Command::Help, "help"), (Command::Quit, "quit")]
        .into_iter()
        .filter_map(|(c, what)| Some(format!(" {} {what} ", app.keys.keys_for(c).first()?)))
        .collect();
    spans.push(Span::styled(hints, Style::default().fg(Color::DarkGray)));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// One control: name, a bar of block characters, the value, and on the wide panel the range.
/// Scale and Seed have no bar: a word, and the seed's lock.
fn control_line(app: &App, id: ControlId, areas: &Areas, selected: bool) -> Line<'static> {
    let c = &app.controls[id];
    let name_style = if selected {
        Style::default().add_modifier(Modifier::REVERSED)
    } else {
        Style::default()
    };
    let name = Span::styled(
        format!("{:<width$}", c.name, width = NAME_WIDTH as usize),
        name_style,
    );
    let value = app.controls.shown(id);
    let dim = Style::default().fg(Color::DarkGray);
    if id == ControlId::Seed {
        let lock = match (app.seed_locked, areas.wide) {
            (true, true) => "locked (x frees)",
            (false, true) => "new each run (x locks)",
            (true, false) => "locked",
            (false, false) => "(x locks)",
        };
        return Line::from(vec![
            name,
            Span::raw(format!(" {value:>6} ")),
            Span::styled(lock, dim),
        ]);
    }
    if !id.has_gauge() {
        return Line::from(vec![name, Span::raw(format!(" {value}"))]);
    }
    let bar = areas.gauge_width() as usize;
    let filled = (c.ratio() * bar as f64).round() as usize;
    let mut spans = vec![
        name,
        Span::raw(" "),
        Span::styled("█".repeat(filled), Style::default().fg(Color::Green)),
        Span::styled("░".repeat(bar - filled), dim),
        Span::raw(format!(" {value:>5}")),
    ];
    if areas.wide && id != ControlId::Length {
        let fmt = |v: f64| {
            if c.step < 1.0 {
                format!("{v:.2}")
            } else {
                format!("{v:.0}")
            }
        };
        spans.push(Span::styled(
            format!(" {}..{}", fmt(c.min), fmt(c.max)),
            dim,
        ));
    }
    Line::from(spans)
}

/// How long the next piece will be: exact in bars, a guess by tokens.
fn estimate(app: &App, wide: bool) -> String {
    let spb = app.seconds_per_step() * STEPS_PER_BAR as f64;
    if let Some(bars) = app.controls.bars() {
        return format!(
            "  {bars} bars = {:.0} s at {:.0} bpm",
            bars as f64 * spb,
            app.value(ControlId::Bpm)
        );
    }
    let steps = app.value(ControlId::Tokens) * STEPS_PER_WORD;
    let guess = format!(
        "≈ {:.0} s, {:.0} bars",
        steps * app.seconds_per_step(),
        steps / STEPS_PER_BAR as f64
    );
    if wide {
        format!(
            "  {} words {guess} at {:.0} bpm",
            app.value(ControlId::Tokens),
            app.value(ControlId::Bpm)
        )
    } else {
        format!("  {} words {guess}", app.value(ControlId::Tokens))
    }
}

fn draw_controls(app: &App, frame: &mut Frame, areas: &Areas) {
    let focused = app.focus == Focus::Controls;
    let shown = areas.visible_controls(app.selected_control);
    let hidden = ControlId::ALL.len() - shown.len();
    let mut lines: Vec<Line> = ControlId::ALL[shown.clone()]
        .iter()
        .map(|&id| control_line(app, id, areas, focused && id == app.selected_control))
        .collect();
    if areas.estimate {
        lines.push(Line::styled(
            estimate(app, areas.wide),
            Style::default().fg(Color::DarkGray),
        ));
    }
    let title = match (focused, areas.wide) {
        (true, true) => " Controls (←/→ change) ",
        (true, false) => " Controls (←/→) ",
        (false, _) => " Controls (Tab) ",
    };
    let mut block = Block::default()
        .borders(Borders::ALL)
        .title(title)
        .border_style(border(focused));
    if hidden > 0 {
        // Which way the others are: ↑/↓ (Up/Down) scroll to them.
        let above = if shown.start > 0 { "↑" } else { " " };
        let below = if shown.end < ControlId::ALL.len() {
            "↓"
        } else {
            " "
        };
        block = block.title_bottom(format!(" {above}{below} {hidden} more "));
    }
    frame.render_widget(Paragraph::new(lines).block(block), areas.controls);
}

fn border(focused: bool) -> Style {
    if focused {
        Style::default().fg(Color::Green)
    } else {
        Style::default().fg(Color::DarkGray)
    }
}

fn draw_menu(app: &App, frame: &mut Frame, area: Rect) {
    let focused = app.focus == Focus::Menu;
    let mut lines: Vec<Line> = Action::ALL
        .iter()
        .enumerate()
        .map(|(i, &action)| {
            let selected = i == app.selected_action;
            let enabled = app.unavailable(action).is_none();
            let mut style = Style::default();
            if !enabled {
                style = style.fg(Color::DarkGray);
            }
            if selected {
                style = style.add_modifier(Modifier::REVERSED);
            }
            let marker = if selected { "▶ " } else { "  " };
            Line::from(Span::styled(format!("{marker}{}", action.label()), style))
        })
        .collect();
    // Say why the selected action is unavailable, or what Continue song will use.
    let selected = Action::ALL[app.selected_action];
    if let Some(why) = app.unavailable(selected) {
        lines.push(Line::styled(why, Style::default().fg(Color::DarkGray)));
    } else if let Some(title) = &app.piece().title {
        lines.push(Line::styled(
            format!("♪ {title}"),
            Style::default().fg(PROMPT_COLOR),
        ));
    } else if let (Action::ContinueSong, Some(songs)) = (selected, &app.env.songs) {
        lines.push(Line::styled(
            songs.clone(),
            Style::default().fg(Color::DarkGray),
        ));
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" Generate (Enter) ")
        .border_style(border(focused));
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn draw_roll(app: &App, frame: &mut Frame, areas: &Areas) {
    let area = areas.roll;
    let decoded = from_words(&app.piece().words);
    let prompt = app.piece().words.get(..app.piece().prompt_len);
    let prompt_notes = from_words(prompt.unwrap_or(&app.piece().words)).notes.len();
    let hint = if areas.wide { " (+/-, </> scroll)" } else { "" };
    let title = Line::from(vec![
        Span::raw(" Piano roll "),
        Span::styled("■ prompt ", Style::default().fg(PROMPT_COLOR)),
        Span::styled("■ new ", Style::default().fg(NEW_COLOR)),
        Span::raw(key_label(&decoded.notes, prompt_notes)),
        Span::styled(
            format!("zoom 1:{}{hint} ", app.zoom),
            Style::default().fg(Color::DarkGray),
        ),
    ]);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(title)
        .title_bottom(takes_line(app));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if let Some(e) = &app.env.model_error {
        let text = format!("No model to generate with.\n\n{e}");
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), inner);
        return;
    }
    if decoded.notes.is_empty() && !app.is_generating() {
        let text = "Press Enter to make a new piece.\nTab switches between the menu and the controls; ? lists every key.";
        frame.render_widget(
            Paragraph::new(text)
                .style(Style::default().fg(Color::DarkGray))
                .wrap(Wrap { trim: true }),
            inner,
        );
        return;
    }
    let roll = PianoRoll {
        notes: &decoded.notes,
        prompt_notes,
        scroll: app.roll_scroll(areas.roll_notes().width),
        zoom: app.zoom,
        playhead: app.playhead_step(),
        selection: app.selection.map(|b| b.steps()),
        new_span: match app.gen {
            GenState::Complete {
                regenerated: Some(bars),
                ..
            } => Some(bars.steps()),
            _ => None,
        },
    };
    frame.render_widget(roll, inner);
}

/// The bottom border of the roll: the Takes setting, then the takes made with the chosen one
/// marked (a click on a number chooses it: [`Areas::take_at`]).
fn takes_line(app: &App) -> Line<'static> {
    let dim = Style::default().fg(Color::DarkGray);
    let mut spans = vec![Span::styled(takes_label(app.takes.count), dim)];
    let made = app.takes.made();
    if made > 1 {
        for k in 0..made {
            spans.push(if k == app.takes.chosen {
                Span::styled(
                    format!("[{}]", k + 1),
                    Style::default().add_modifier(Modifier::BOLD),
                )
            } else {
                Span::raw(format!(" {} ", k + 1))
            });
        }
    }
    Line::from(spans)
}

/// "key G / Em " for the new part's notes (the prompt's while nothing new is made), so a player
/// knows what to play along in; empty without notes.
fn key_label(notes: &[Note], prompt_notes: usize) -> String {
    let new = &notes[prompt_notes.min(notes.len())..];
    let part = if new.is_empty() { notes } else { new };
    best_scale(part).map_or_else(String::new, |(root, _)| {
        format!("key {} ", scale_name(root))
    })
}

fn draw_progress(app: &App, frame: &mut Frame, area: Rect) {
    let (ratio, label) = match &app.gen {
        GenState::Running {
            regenerating: Some(span),
            elapsed,
            ..
        } => (
            0.0,
            format!(
                "regenerating {span} ({}), {:.1} s (Esc cancels)",
                app.env.fill_method,
                elapsed.as_secs_f64()
            ),
        ),
        GenState::Running {
            made,
            total,
            elapsed,
            bars,
            ..
        } => {
            let rate = *made as f64 / elapsed.as_secs_f64().max(1e-3);
            match bars {
                Some(bars) => {
                    let done = bars_made(app);
                    (
                        done / (*bars).max(1) as f64,
                        format!(
                            "generating {done:.1}/{bars} bars, {rate:.0} tokens/s (Esc cancels)"
                        ),
                    )
                }
                None => (
                    *made as f64 / (*total).max(1) as f64,
                    format!("generating {made}/{total} words, {rate:.0} tokens/s (Esc cancels)"),
                ),
            }
        }
        GenState::Complete { .. } if app.answering.on => (
            1.0,
            "answered: play the next phrase on the laptop (Esc stops)".to_string(),
        ),
        GenState::Complete { .. } => (1.0, "done".to_string()),
        _ if app.answering.on => (
            0.0,
            "waiting for a phrase from the laptop's keyboard (Esc stops)".to_string(),
        ),
        _ => (0.0, String::new()),
    };
    let gauge = Gauge::default()
        .gauge_style(Style::default().fg(Color::Green).bg(Color::Black))
        .ratio(ratio.clamp(0.0, 1.0))
        .label(label);
    frame.render_widget(gauge, area);
}

/// Bars of new music so far: from the bar line after the prompt (where a Length in bars
/// counts from) to the end of the last note.
fn bars_made(app: &App) -> f64 {
    let prompt_end =
        from_words(&app.piece().words[..app.piece().prompt_len.min(app.piece().words.len())]).end;
    let start = prompt_end.div_ceil(STEPS_PER_BAR) * STEPS_PER_BAR;
    let end = from_words(&app.piece().words).end;
    end.saturating_sub(start) as f64 / STEPS_PER_BAR as f64
}

/// The status line: the state of generation, then a toast if any.
pub fn status_text(app: &App) -> String {
    let (lead, state, toast) = status_parts(app);
    match toast {
        Some(t) => format!("{lead}{state} | {t}"),
        None => format!("{lead}{state}"),
    }
}

/// The status line in `width` columns: as [`status_text`] where it fits; where it does not, the
/// newest message (the toast) comes right after where playback is, whole, and the state of
/// generation after it as far as it fits.
pub fn status_line(app: &App, width: usize) -> String {
    let line = status_text(app);
    match status_parts(app) {
        (lead, state, Some(toast)) if line.chars().count() > width => {
            format!("{lead}{toast} | {state}")
        }
        _ => line,
    }
}

/// Where playback is and which take ("playing 1.0/5.0 s | take 2/4 | "), the state of generation
/// with the voice, and the toast.
fn status_parts(app: &App) -> (String, String, Option<&str>) {
    let state = match &app.gen {
        GenState::Idle => match (&app.env.model_error, &app.env.songs) {
            (Some(_), _) => "No model loaded: see the piano roll for how to get one".to_string(),
            // A toast says more than where the songs are: the line is short at 80 columns.
            (None, _) if app.toast.is_some() => "Ready".to_string(),
            (None, songs) => {
                let mut parts = vec!["Ready: Enter generates".to_string()];
                // Where sound goes when it is not the plain sound card (that needs no word).
                parts.extend(app.env.sound.clone().filter(|s| s.contains("listener")));
                parts.extend(songs.clone());
                parts.join(" | ")
            }
        },
        GenState::Running { .. } => "Generating...".to_string(),
        GenState::Complete {
            regenerated: Some(bars),
            took,
            ..
        } => format!(
            "Regenerated {bars}: {} best first, took {:.1} s",
            match app.takes.made() {
                1 => "1 fill".to_string(),
                n => format!("{n} fills"),
            },
            took.as_secs_f64()
        ),
        GenState::Complete {
            tokens,
            music_seconds,
            took,
            cancelled,
            ..
        } => format!(
            "{} {tokens} tokens, {music_seconds:.1} s of music, took {:.1} s; {:.1} bars",
            if *cancelled {
                "Cancelled, kept the partial piece:"
            } else {
                "Generation complete!"
            },
            took.as_secs_f64(),
            from_words(&app.piece().words).end as f64 / STEPS_PER_BAR as f64
        ),
        GenState::Failed(e) => format!("Generation failed: {e}"),
    };
    // Where playback is comes first: at 80 columns the end of the line may not show.
    let playing = match app.playing {
        Some(at) => format!("playing {at:.1}/{:.1} s | ", app.music_seconds()),
        None => String::new(),
    };
    let voice = match &app.soundfont {
        Some(path) => format!(
            " | voice: {}",
            path.file_name()
                .map_or(path.display().to_string(), |n| n.to_string_lossy().into())
        ),
        None => String::new(),
    };
    let take = super::takes::status_prefix(app);
    (
        format!("{playing}{take}"),
        format!("{state}{voice}"),
        app.toast.as_deref(),
    )
}

fn draw_status(app: &App, frame: &mut Frame, area: Rect) {
    let style = match app.gen {
        GenState::Failed(_) => Style::default().fg(Color::Red),
        GenState::Complete { .. } => Style::default().fg(Color::Green),
        _ => Style::default(),
    };
    let line = status_line(app, area.width as usize);
    frame.render_widget(Paragraph::new(line).style(style), area);
}

/// The help popup's rows: commands shown together and what they do; their keys come from the
/// keymap. Grouped so the popup fits a 24-row terminal.
#[rustfmt::skip] // One row a line reads as the popup does.
const HELP: &[(&[Command], &str)] = &[
    (&[Command::Run], "generate with the selected action"),
    (&[Command::SwitchFocus], "switch between menu and controls"),
    (&[Command::Up, Command::Down], "select a menu item or a control"),
    (&[Command::Decrease, Command::Increase], "change the selected control (Shift: more)"),
    (&[Command::DecreaseMore, Command::IncreaseMore], "change it in large steps"),
    (&[Command::LockSeed], "lock / unlock the seed"),
    (&[Command::PlayStop, Command::PlayWhileMade], "play / stop; play pieces as they are made, on / off"),
    (&[Command::SaveMidi, Command::SaveWav], "save MIDI / WAV"),
    (&[Command::SwitchVoice], "voice: built-in / SoundFont (next play)"),
    (&[Command::Undo], "undo the last extension or regeneration"),
    (&[Command::SelectBar, Command::SelectFewer, Command::Regenerate], "select bars (one more / fewer), regenerate them"),
    (&[Command::MoreTakes, Command::FewerTakes, Command::Take(1), Command::Take(2), Command::Take(3),
      Command::Take(4), Command::Take(5), Command::Take(6), Command::Take(7), Command::Take(8)],
        "one take more / fewer; show take N"),
    (&[Command::ZoomIn, Command::ZoomOut], "zoom the piano roll in / out"),
    (&[Command::ScrollBack, Command::ScrollForward], "scroll the piano roll"),
    (&[Command::Cancel], "cancel a generation, close a popup"),
    (&[Command::Help], "this help (Esc, q or this key closes it)"),
    (&[Command::Quit], "quit (Ctrl+C always quits)"),
];

/// The mouse's part of the help.
const MOUSE_HELP: &[(&str, &str)] = &[
    ("click", "select a menu item or a control, set a gauge"),
    ("double click", "run a menu item"),
    ("click the roll", "move the playhead (seeks while playing)"),
    ("drag on the roll", "select bars to regenerate"),
    ("wheel", "scroll the roll; Shift/Ctrl+wheel zooms"),
];

/// The keys of a help row: a pair reads `this / that` (`s / w`); a longer run is listed
/// (`t T 1 2 3`).
fn help_keys(keys: &Keymap, commands: &[Command]) -> String {
    let sep = if commands.len() > 2 { " " } else { " / " };
    commands
        .iter()
        .map(|&c| keys.shown(c))
        .collect::<Vec<_>>()
        .join(sep)
}

/// Every key (as bound now) and the mouse.
fn help_rows(keys: &Keymap) -> Vec<(String, &'static str)> {
    HELP.iter()
        .map(|&(commands, what)| (help_keys(keys, commands), what))
        .chain(MOUSE_HELP.iter().map(|&(k, what)| (k.to_string(), what)))
        .collect()
}

fn draw_help(keys: &Keymap, frame: &mut Frame, area: Rect) {
    let rows = help_rows(keys);
    let key_width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let what_width = rows
        .iter()
        .map(|(_, w)| w.chars().count())
        .max()
        .unwrap_or(0);
    let width = (key_width + what_width + 4) as u16;
    let popup = centered(area, width, rows.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    let lines: Vec<Line> = rows
        .into_iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(
                    format!("{k:>key_width$}  "),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
                Span::raw(what),
            ])
        })
        .collect();
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" Keys (Esc or q closes) ");
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}
