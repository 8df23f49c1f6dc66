//! `nanotune listen --midi-out`: the notes go to a MIDI port (through midir) instead of the
//! synth, for a DAW or a hardware synth. A worker thread sends each note-on and note-off when
//! the piece's clock reaches it; pausing, seeking and stopping silence what sounds.

use crate::recover::lock;
use crate::sound::piece::Piece;
use crate::sound::playback::{clamp_volume, sounding_seconds, Clock, Growing, Playback};
use crate::sound::timed::check_length;
use anyhow::{anyhow, bail, Result};
use midir::{MidiOutput, MidiOutputConnection};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// The client name other MIDI software sees.
const CLIENT_NAME: &str = "nanotune";
/// The longest the worker sleeps between looks at the clock.
const MAX_WAIT: Duration = Duration::from_millis(20);
/// Notes shorter than this are lengthened, so a note-on never follows its own note-off.
const SHORTEST_NOTE: f64 = 0.01;

fn midi() -> Result<MidiOutput> {
    // libasound prints its own complaint (no /dev/snd/seq) to stderr: we say it in one line.
    crate::sound::audio::quiet::silence_alsa();
    MidiOutput::new(CLIENT_NAME).map_err(|e| anyhow!("MIDI is not available here: {e}"))
}

/// The names of the MIDI output ports, in midir's order.
pub fn output_ports() -> Result<Vec<String>> {
    Ok(port_names(&midi()?))
}

/// The names of a MIDI input's or output's ports, in midir's order.
pub fn port_names<M: midir::MidiIO>(midi: &M) -> Vec<String> {
    midi.ports()
        .iter()
        .map(|p| midi.port_name(p).unwrap_or_else(|_| "(unnamed)".into()))
        .collect()
}

/// Picks a port: the first without `wanted`; else the one named exactly, else the one at that
/// index, else the only one whose name contains it (any case).
pub fn choose_port(names: &[String], wanted: Option<&str>) -> Result<usize> {
    if names.is_empty() {
        bail!("there are no MIDI output ports (is a synth or a DAW running?)");
    }
    let Some(wanted) = wanted.map(str::trim).filter(|w| !w.is_empty()) else {
        return Ok(0);
    };
    if let Some(i) = names.iter().position(|n| n == wanted) {
        return Ok(i);
    }
    if let Ok(i) = wanted.parse::<usize>() {
        if i < names.len() {
            return Ok(i);
        }
    }
    let lower = wanted.to_lowercase();
    let matching: Vec<usize> = (0..names.len())
        .filter(|&i| names[i].to_lowercase().contains(&lower))
        .collect();
    match matching.as_slice() {
        [i] => return Ok(*i),
        [] => {}
        _ => bail!(
            "{} MIDI ports match {wanted:?}: {}",
            matching.len(),
            list(names, &matching)
        ),
    }
    let all: Vec<usize> = (0..names.len()).collect();
    bail!(
        "no MIDI port matches {wanted:?}; the ports are: {}",
        list(names, &all)
    )
}

fn list(names: &[String], which: &[usize]) -> String {
    which
        .iter()
        .map(|&i| format!("{i}: {}", names[i]))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Plays pieces on a MIDI port, channel 1, piano.
pub struct MidiOutPlayback {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
    port: String,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// The piece as far as it was given (for a piece being made, the notes taken so far).
    piece: Option<Piece>,
    /// For a piece being made: how much of it was taken.
    growing: Option<Growing>,
    /// (seconds into the piece, note on?, pitch, velocity), sorted; from `next` on still to send.
    events: Vec<(f64, bool, u8, u8)>,
    next: usize,
    clock: Clock,
    volume: f32,
    /// Bumped whenever what sounds must be cut (play, seek, pause, stop).
    cut: u64,
    quit: bool,
    failed: Option<String>,
}

impl State {
    /// The piece being made, grown to `piece` (see [`Playback::grow`]): its new notes' events
    /// join those still to send, in order.
    fn grow(&mut self, piece: &Piece, settled: Option<f64>) {
        let (Some(growing), Some(have)) = (&mut self.growing, &mut self.piece) else {
            return;
        };
        let more = growing.take(piece, settled);
        let next = self.next;
        self.events.extend(events_from(&more, 0.0));
        in_order(&mut self.events[next..]);
        have.score.notes.extend(more.score.notes);
        self.clock.lengthen(sounding_seconds(have));
        match settled {
            Some(q) => self.clock.lengthen(piece.score.seconds_at(q)),
            None => self.growing = None,
        }
    }
}

impl MidiOutPlayback {
    /// Connects to the port chosen by [`choose_port`].
    pub fn open(wanted: Option<&str>) -> Result<MidiOutPlayback> {
        let names = output_ports()?;
        let index = choose_port(&names, wanted)?;
        let port = names[index].clone();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                volume: 1.0,
                ..State::default()
            }),
            changed: Condvar::new(),
        });
        // The connection lives and dies on the worker, which says first whether it opened.
        let (opened_tx, opened_rx) = mpsc::channel();
        let worker = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("nanotune-midi-out".into())
                .spawn(move || {
                    let connection = midi().and_then(|midi| {
                        let ports = midi.ports();
                        let port = ports
                            .get(index)
                            .ok_or_else(|| anyhow!("the port went away"))?;
                        midi.connect(port, "nanotune-out")
                            .map_err(|e| anyhow!("connecting to the MIDI port: {e}"))
                    });
                    match connection {
                        Ok(c) => {
                            let _ = opened_tx.send(Ok(()));
                            send_on_time(c, &shared);
                        }
                        Err(e) => {
                            let _ = opened_tx.send(Err(e));
                        }
                    }
                })?
        };
        opened_rx
            .recv()
            .map_err(|_| anyhow!("the MIDI thread ended"))??;
        Ok(MidiOutPlayback {
            shared,
            worker: Some(worker),
            port,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared.state)
    }

    /// Changes the state and wakes the worker; `cut` silences what sounds.
    fn change(&self, cut: bool, f: impl FnOnce(&mut State)) {
        let mut state = self.state();
        f(&mut state);
        if cut {
            state.cut += 1;
        }
        self.shared.changed.notify_all();
    }
}

/// The events of `piece` from `seconds` on, in the piece's time.
fn events_from(piece: &Piece, seconds: f64) -> Vec<(f64, bool, u8, u8)> {
    let mut events = Vec::new();
    for n in piece.timed_notes_from(seconds) {
        let start = seconds + n.start;
        events.push((start, true, n.pitch, n.velocity));
        events.push((start + n.duration.max(SHORTEST_NOTE), false, n.pitch, 0));
    }
    in_order(&mut events);
    events
}

/// Sorts events by time; at one moment, note-offs first: a re-struck key is released, then
/// struck.
fn in_order(events: &mut [(f64, bool, u8, u8)]) {
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
}

/// The worker: sends what is due, cuts on request, until told to quit.
fn send_on_time(mut out: MidiOutputConnection, shared: &Shared) {
    // Piano on channel 1.
    let _ = out.send(&[0xC0, 0]);
    let mut sounding = [false; 128];
    let mut cut_seen = 0;
    let mut state = lock(&shared.state);
    loop {
        if state.cut != cut_seen || state.quit {
            for (pitch, on) in sounding.iter_mut().enumerate() {
                if std::mem::take(on) {
                    let _ = out.send(&[0x80, pitch as u8, 0]);
                }
            }
            // All notes off, for anything a synth still holds.
            let _ = out.send(&[0xB0, 123, 0]);
            cut_seen = state.cut;
            if state.quit {
                return;
            }
        }
        let mut wait = MAX_WAIT;
        if state.clock.is_running() && !state.clock.is_paused() {
            let now = state.clock.position();
            let volume = state.volume;
            while let Some(&(at, on, pitch, velocity)) = state.events.get(state.next) {
                if at > now {
                    wait = wait.min(Duration::from_secs_f64(at - now));
                    break;
                }
                state.next += 1;
                let message = if on {
                    let v = (velocity as f32 * volume).round().clamp(1.0, 127.0) as u8;
                    [0x90, pitch, v]
                } else {
                    [0x80, pitch, 0]
                };
                sounding[pitch as usize] = on;
                if let Err(e) = out.send(&message) {
                    state
                        .failed
                        .get_or_insert(format!("sending to the MIDI port: {e}"));
                }
            }
        }
        state = shared
            .changed
            .wait_timeout(state, wait)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

impl Playback for MidiOutPlayback {
    fn play(&mut self, piece: &Piece) -> anyhow::Result<()> {
        self.stop();
        check_length(&piece.timed_notes())?;
        let length = sounding_seconds(piece);
        self.change(true, |s| {
            s.events = events_from(piece, 0.0);
            s.next = 0;
            s.piece = Some(piece.clone());
            s.clock.start(length);
        });
        Ok(())
    }
    fn play_open(&mut self, piece: &Piece, settled: f64) -> anyhow::Result<()> {
        let mut growing = Growing::default();
        let taken = growing.take(piece, Some(settled));
        self.play(&taken)?;
        self.change(false, |s| {
            s.clock.lengthen(piece.score.seconds_at(settled));
            s.growing = Some(growing);
        });
        Ok(())
    }
    fn grow(&mut self, piece: &Piece, settled: Option<f64>) -> anyhow::Result<()> {
        check_length(&piece.timed_notes())?;
        self.change(false, |s| s.grow(piece, settled));
        Ok(())
    }
    fn stop(&mut self) {
        self.change(true, |s| {
            s.growing = None;
            s.piece = None;
            s.events.clear();
            s.next = 0;
            s.clock.stop();
        });
    }
    fn set_paused(&mut self, paused: bool) {
        self.change(paused, |s| s.clock.set_paused(paused));
    }
    fn is_paused(&self) -> bool {
        self.state().clock.is_paused()
    }
    fn set_volume(&mut self, volume: f32) {
        self.change(false, |s| s.volume = clamp_volume(volume));
    }
    fn volume(&self) -> f32 {
        self.state().volume
    }
    fn seek(&mut self, seconds: f64) {
        self.change(true, |s| {
            if let Some(piece) = &s.piece {
                let seconds = seconds.clamp(0.0, s.clock.length());
                s.events = events_from(piece, seconds);
                s.next = 0;
                s.clock.seek(seconds);
            }
        });
    }
    fn position_seconds(&self) -> f64 {
        self.state().clock.position()
    }
    fn length_seconds(&self) -> f64 {
        self.state().clock.length()
    }
    fn is_playing(&self) -> bool {
        let state = self.state();
        state.clock.is_running() || state.growing.is_some()
    }
    fn failure(&self) -> Option<String> {
        self.state().failed.clone()
    }
    fn describe(&self) -> String {
        format!("MIDI port: {}", self.port)
    }
}

impl Drop for MidiOutPlayback {
    fn drop(&mut self) {
        self.change(true, |s| s.quit = true);
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::notes::Note;

    #[test]
    fn ports_are_chosen_by_name_part_or_index() {
        let names: Vec<String> = [
            "Midi Through:Port-0 14:0",
            "FLUID Synth (qsynth):Synth input 128:0",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(choose_port(&names, None).unwrap(), 0);
        assert_eq!(choose_port(&names, Some("fluid")).unwrap(), 1);
        assert_eq!(choose_port(&names, Some("1")).unwrap(), 1);
        let err = choose_port(&names, Some("Yamaha")).unwrap_err().to_string();
        assert!(err.contains("no MIDI port matches \"Yamaha\""), "{err}");
        assert!(err.contains("1: FLUID Synth"), "{err}");
        let err = choose_port(&names, Some(":")).unwrap_err().to_string();
        assert!(err.contains("2 MIDI ports match"), "{err}");
        assert!(choose_port(&[], None)
            .unwrap_err()
            .to_string()
            .contains("no MIDI output ports"));
    }

    #[test]
    fn events_release_a_restruck_key_before_striking_it() {
        let notes = [
            Note {
                onset: 0,
                pitch: 60,
                duration: 2,
            },
            Note {
                onset: 2,
                pitch: 60,
                duration: 2,
            },
        ];
        let piece = Piece::from_grid("t", &notes, 120.0);
        let events = events_from(&piece, 0.0);
        let kinds: Vec<bool> = events.iter().map(|e| e.1).collect();
        assert_eq!(kinds, [true, false, true, false]);
        assert!((events[1].0 - 0.25).abs() < 1e-9 && (events[2].0 - 0.25).abs() < 1e-9);
        // From 0.3 s: the second note, cut to what is left, at its own time in the piece.
        let later = events_from(&piece, 0.3);
        assert_eq!(later.len(), 2);
        assert!((later[0].0 - 0.3).abs() < 1e-9 && (later[1].0 - 0.5).abs() < 1e-9);
    }

    #[test]
    fn a_piece_made_in_parts_sends_the_events_of_the_whole() {
        let notes: Vec<Note> = (0..16)
            .map(|i| Note {
                onset: i * 3,
                pitch: 60 + (i % 5) as u8,
                duration: 4,
            })
            .collect();
        let piece = Piece::from_grid("t", &notes, 120.0);
        let mut growing = Growing::default();
        let first = growing.take(&piece, Some(3.0));
        let mut state = State {
            events: events_from(&first, 0.0),
            piece: Some(first),
            growing: Some(growing),
            ..State::default()
        };
        state.clock.start(1.0);
        // Two events went out before more came.
        state.next = 2;
        state.grow(&piece, Some(7.5));
        assert!(state.growing.is_some());
        state.grow(&piece, None);
        assert!(state.growing.is_none());
        assert_eq!(state.events, events_from(&piece, 0.0));
        assert_eq!(state.piece.unwrap().score, piece.score);
        assert!((state.clock.length() - sounding_seconds(&piece)).abs() < 1e-9);
    }
}
