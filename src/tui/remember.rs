//! What the screen remembers and when: the controls read from and written to
//! [`Settings`](super::saved::Settings), and a [`Keeper`] that writes them a moment after they
//! stop changing (not at every key of a held arrow) and at quit, and keeps the last piece made.

use super::controls::{ControlId, ScaleChoice};
use super::saved::{LastPiece, Settings, Store};
use super::state::{App, GenState, Piece};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long the settings must stay unchanged before they are written.
pub const SETTLE: Duration = Duration::from_millis(700);

/// The controls the settings file keeps, with their keys' fields.
fn field(s: &mut Settings, id: ControlId) -> Option<&mut Option<f64>> {
    match id {
        ControlId::Temperature => Some(&mut s.temperature),
        ControlId::Tokens => Some(&mut s.tokens),
        ControlId::Length => Some(&mut s.bars),
        ControlId::TopK => Some(&mut s.top_k),
        ControlId::TopP => Some(&mut s.top_p),
        ControlId::Bpm => Some(&mut s.bpm),
        ControlId::Volume => Some(&mut s.volume),
        ControlId::Polyphony => Some(&mut s.polyphony),
        ControlId::Density => Some(&mut s.density),
        // The scale and the range are names, not numbers; a seed is per piece.
        ControlId::Scale | ControlId::Range | ControlId::Seed => None,
    }
}

/// The settings the screen shows: the controls and Takes over what was read (voice, SoundFont
/// and the folders pass through as they were).
pub fn settings_of(app: &App) -> Settings {
    let mut s = app.kept.clone();
    for id in ControlId::ALL {
        if let Some(f) = field(&mut s, id) {
            *f = Some(app.value(id));
        }
    }
    s.scale = Some(app.controls.scale().label());
    s.range = Some(app.controls.shown(ControlId::Range));
    s.takes = Some(app.takes.count as f64);
    s.play_while_made = Some(app.play_while_made);
    s
}

/// Sets the controls from `s` (values out of range are brought into it) and keeps `s` for what
/// the screen does not own. Returns a note when the scale was not a key.
pub fn apply(app: &mut App, s: &Settings) -> Option<String> {
    let mut s = s.clone();
    for id in ControlId::ALL {
        if let Some(Some(v)) = field(&mut s, id).map(|f| *f) {
            app.controls[id].set(v);
        }
    }
    if let Some(takes) = s.takes {
        app.takes.set_count(takes);
    }
    if let Some(play) = s.play_while_made {
        app.play_while_made = play;
    }
    let mut note = None;
    if let Some(name) = &s.scale {
        match ScaleChoice::parse(name) {
            Some(choice) => app.controls[ControlId::Scale].value = choice.index() as f64,
            None => note = Some(format!("settings: scale '{name}' is not a key, scale off")),
        }
    }
    if let Some(text) = &s.range {
        let control = &mut app.controls[ControlId::Range];
        match text.trim() {
            "off" => control.value = 0.0,
            t => match t.parse::<crate::music::range::PitchRange>() {
                Ok(r) => control.value = super::controls::Controls::range_index(r) as f64,
                Err(_) => {
                    note = Some(format!(
                        "settings: range '{text}' is not a range of notes, range off"
                    ))
                }
            },
        }
    }
    app.kept = s;
    note
}

/// The model and dataset folders to open: the ones given on the command line (remembered, made
/// absolute so another working folder finds them), else the remembered ones where they still
/// exist. A remembered folder that has gone is forgotten, with a note.
pub fn folders(
    checkpoint: Option<&Path>,
    data: Option<&Path>,
    kept: &mut Settings,
) -> (Option<PathBuf>, Option<PathBuf>, Option<String>) {
    let mut notes = Vec::new();
    let mut pick = |given: Option<&Path>, saved: &mut Option<PathBuf>, what: &str| {
        if let Some(dir) = given {
            *saved = Some(std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()));
            return Some(dir.to_path_buf());
        }
        match saved.take() {
            Some(dir) if dir.exists() => {
                *saved = Some(dir.clone());
                Some(dir)
            }
            Some(dir) => {
                notes.push(format!("the last {what} {} is gone", dir.display()));
                None
            }
            None => None,
        }
    };
    let c = pick(checkpoint, &mut kept.checkpoint, "model folder");
    let d = pick(data, &mut kept.data, "dataset");
    let note = (!notes.is_empty()).then(|| notes.join("; "));
    (c, d, note)
}

/// Writes the settings once they settle, and the last piece once a generation ends.
pub struct Keeper {
    store: Store,
    written: Settings,
    seen: Settings,
    changed_at: Instant,
    piece: Piece,
}

impl Keeper {
    /// A keeper for `app` as it opens, whose piece is on disk already and whose settings file
    /// holds `on_disk` (what differs, such as a `--checkpoint` given now, is written once it
    /// settles).
    pub fn new(store: Store, on_disk: Settings, app: &App, now: Instant) -> Keeper {
        Keeper {
            store,
            written: on_disk,
            seen: settings_of(app),
            changed_at: now,
            piece: app.piece().clone(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Looks at the app after its messages: writes what settled or finished. An error is
    /// returned once, for the status line.
    pub fn observe(&mut self, app: &App, now: Instant) -> Option<String> {
        let s = settings_of(app);
        if s != self.seen {
            self.seen = s;
            self.changed_at = now;
        }
        let mut errors = Vec::new();
        if self.seen != self.written && now.saturating_duration_since(self.changed_at) >= SETTLE {
            errors.extend(self.write_settings());
        }
        let finished = !matches!(app.gen, GenState::Running { .. });
        if finished && *app.piece() != self.piece && app.piece().words.len() > 2 {
            self.piece = app.piece().clone();
            let p = &self.piece;
            let kept = LastPiece::new(&p.words, p.prompt_len, p.title.clone());
            if let Err(e) = self.store.save_last_piece(&kept) {
                errors.push(format!("could not keep the piece: {e:#}"));
            }
        }
        (!errors.is_empty()).then(|| errors.join("; "))
    }

    /// Writes what has not been written yet (at quit).
    pub fn flush(&mut self, app: &App) -> Option<String> {
        self.seen = settings_of(app);
        if self.seen == self.written {
            return None;
        }
        self.write_settings()
    }

    fn write_settings(&mut self) -> Option<String> {
        // Written or not, not tried again until the next change: a read-only folder must not
        // cost a write at every frame.
        self.written = self.seen.clone();
        self.store
            .save_settings(&self.written)
            .err()
            .map(|e| format!("could not save the settings: {e:#}"))
    }
}

/// The piece kept by the last run, as the screen shows it.
pub fn last_piece(store: &Store) -> Option<Piece> {
    let (kept, words) = store.load_last_piece()?;
    Some(Piece {
        words,
        prompt_len: kept.prompt_len,
        title: kept.title,
    })
}

#[cfg(test)]
mod tests {
    use super::super::state::Environment;
    use super::*;

    fn app() -> App {
        App::new(Environment::default(), 3)
    }

    #[test]
    fn settings_round_trip_through_the_controls_and_keep_what_is_not_theirs() {
        let mut a = app();
        let read = Settings {
            temperature: Some(1.3),
            bars: Some(8.0),
            scale: Some("D minor".into()),
            takes: Some(3.0),
            play_while_made: Some(false),
            voice: Some("soundfont".into()),
            soundfont: Some("/sf/piano.sf2".into()),
            top_k: Some(9999.0),
            ..Settings::default()
        };
        assert_eq!(apply(&mut a, &read), None);
        assert_eq!(a.value(ControlId::Temperature), 1.3);
        assert_eq!(a.controls.bars(), Some(8));
        assert_eq!(a.controls.shown(ControlId::Scale), "D minor");
        assert_eq!(
            a.value(ControlId::TopK),
            a.controls[ControlId::TopK].max,
            "clamped"
        );
        let back = settings_of(&a);
        assert_eq!(back.takes, Some(3.0));
        assert!(!a.play_while_made);
        assert_eq!(back.play_while_made, Some(false));
        assert_eq!(back.voice.as_deref(), Some("soundfont"));
        assert_eq!(back.soundfont, read.soundfont);
        assert_eq!(back.temperature, Some(1.3));
        assert_eq!(back.tokens, Some(500.0));
        let bad = Settings {
            scale: Some("Lydian".into()),
            ..Settings::default()
        };
        assert!(apply(&mut a, &bad).unwrap().contains("Lydian"));
    }

    #[test]
    fn the_keeper_writes_once_settled_and_at_quit_and_keeps_the_piece() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::locate(Some(&dir.path().join("settings.toml"))).unwrap();
        let mut a = app();
        let t0 = Instant::now();
        let mut keeper = Keeper::new(store.clone(), settings_of(&a), &a, t0);
        assert_eq!(keeper.observe(&a, t0), None);
        assert!(!store.settings.exists(), "nothing changed, nothing written");
        a.controls[ControlId::Temperature].set(1.5);
        keeper.observe(&a, t0);
        a.controls[ControlId::Temperature].set(1.6);
        keeper.observe(&a, t0 + SETTLE / 2);
        assert!(!store.settings.exists(), "still changing");
        keeper.observe(&a, t0 + SETTLE * 2);
        assert_eq!(store.load_settings().0.temperature, Some(1.6));
        a.controls[ControlId::Bpm].set(90.0);
        keeper.observe(&a, t0 + SETTLE * 2);
        assert_eq!(keeper.flush(&a), None);
        assert_eq!(store.load_settings().0.bpm, Some(90.0));

        a.show_only(Piece {
            words: crate::music::words::parse_words("START n60 d4 END").0,
            prompt_len: 1,
            title: Some("t".into()),
        });
        keeper.observe(&a, t0 + SETTLE * 3);
        assert_eq!(last_piece(&store), Some(a.piece().clone()));
    }

    #[test]
    fn folders_given_are_remembered_and_gone_ones_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let mut kept = Settings::default();
        let (c, d, note) = folders(Some(dir.path()), None, &mut kept);
        assert_eq!((c.as_deref(), d, note), (Some(dir.path()), None, None));
        assert_eq!(kept.checkpoint.as_deref(), Some(dir.path()));
        let (c, _, _) = folders(None, None, &mut kept);
        assert_eq!(c.as_deref(), Some(dir.path()), "remembered");
        kept.data = Some(dir.path().join("gone"));
        let (_, d, note) = folders(None, None, &mut kept);
        assert_eq!(d, None);
        assert!(note.unwrap().contains("gone"));
        assert_eq!(kept.data, None);
    }
}
