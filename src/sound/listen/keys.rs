//! The keys a listener hears (`listen --midi-in [PORT]`, or `--midi-in-file FILE` played in
//! real time as if from a keyboard): key events stamped with seconds on the listener's clock,
//! from which the listener catches phrases ([`crate::music::phrase`]) for the server.

use crate::music::midi::read_midi;
use crate::music::phrase::{key_events, KeyEvent};
use anyhow::{anyhow, bail, Context, Result};
use midir::{MidiInput, MidiInputConnection};
use midly::live::LiveEvent;
use midly::MidiMessage;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Controller 64, the sustain pedal: 64 and above hold it down.
const SUSTAIN_PEDAL: u8 = 64;

/// Where the keys come from.
#[derive(Clone, Debug, PartialEq)]
pub enum KeySource {
    /// A MIDI input port: the first, or one named as `--midi-out` names them.
    Port(Option<String>),
    /// A MIDI file, played in real time at the tempo asked for.
    File(PathBuf),
}

/// What a listener hears and how it cuts phrases (`listen --midi-in ... --phrase-gap B
/// --phrase-bars N --count-in`).
#[derive(Clone, Debug, PartialEq)]
pub struct KeySettings {
    pub source: KeySource,
    /// Beats of silence that end a phrase.
    pub gap_beats: f64,
    /// A phrase ends at this many bars, if it has not ended before.
    pub max_bars: Option<u32>,
    /// A bar of clicks on the listener's sound before the keys are heard; the grid counts from
    /// its end.
    pub count_in: bool,
}

/// Keys being heard: their events so far, on a clock that started with them.
pub struct Keys {
    events: Receiver<(f64, KeyEvent)>,
    clock: Instant,
    /// Ends the file's player thread.
    stop: Arc<AtomicBool>,
    /// Kept open while the keys are heard (closed when dropped).
    _port: Option<MidiInputConnection<()>>,
    /// Where they come from, in words.
    pub from: String,
}

impl Keys {
    /// Seconds on the keys' clock.
    pub fn now(&self) -> f64 {
        self.clock.elapsed().as_secs_f64()
    }

    /// The events that arrived since the last call, in time order.
    pub fn arrived(&self) -> Vec<(f64, KeyEvent)> {
        self.events.try_iter().collect()
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

impl KeySource {
    /// Starts hearing: a file begins to play `lead` seconds from now at `bpm`; a port is
    /// opened. An error says why nothing can be heard (no such file or port, no MIDI here).
    pub fn start(&self, bpm: f64, lead: f64) -> Result<Keys> {
        let (tx, rx) = channel();
        let clock = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let (port, from) = match self {
            KeySource::File(path) => {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                let piece = read_midi(&bytes).with_context(|| format!("{}", path.display()))?;
                let events = key_events(&piece, bpm);
                if events.is_empty() {
                    bail!("{} holds no notes to play", path.display());
                }
                let stop = stop.clone();
                std::thread::Builder::new()
                    .name("nanotune-midi-in-file".into())
                    .spawn(move || play_file(events, lead, clock, &tx, &stop))?;
                (
                    None,
                    format!("MIDI file {} at {bpm:.0} bpm", path.display()),
                )
            }
            KeySource::Port(wanted) => {
                let (connection, name) = open_port(wanted.as_deref(), clock, tx)?;
                (Some(connection), format!("MIDI input {name}"))
            }
        };
        Ok(Keys {
            events: rx,
            clock,
            stop,
            _port: port,
            from,
        })
    }
}

/// Sends each event of `events` when the clock reaches its time (plus `lead`).
fn play_file(
    events: Vec<(f64, KeyEvent)>,
    lead: f64,
    clock: Instant,
    tx: &Sender<(f64, KeyEvent)>,
    stop: &AtomicBool,
) {
    for (at, event) in events {
        let at = at + lead;
        loop {
            if stop.load(Ordering::Acquire) {
                return;
            }
            let left = at - clock.elapsed().as_secs_f64();
            if left <= 0.0 {
                break;
            }
            // Short naps, so a stop is heard soon.
            std::thread::sleep(Duration::from_secs_f64(left.min(0.02)));
        }
        if tx.send((at, event)).is_err() {
            return;
        }
    }
}

fn midi_in() -> Result<MidiInput> {
    // libasound prints its own complaint (no /dev/snd/seq) to stderr: we say it in one line.
    crate::sound::audio::quiet::silence_alsa();
    MidiInput::new("nanotune").map_err(|e| anyhow!("MIDI is not available here: {e}"))
}

/// The names of the MIDI input ports, in midir's order.
pub fn input_ports() -> Result<Vec<String>> {
    Ok(super::midi_out::port_names(&midi_in()?))
}

/// The input port `wanted` names (as [`super::midi_out::choose_port`] picks): its index and
/// name; an error says why there is none.
pub fn choose_input(wanted: Option<&str>) -> Result<(usize, String)> {
    let mut names = input_ports()?;
    if names.is_empty() {
        bail!("there are no MIDI input ports (is the keyboard plugged in?)");
    }
    let index = super::midi_out::choose_port(&names, wanted)?;
    Ok((index, names.swap_remove(index)))
}

/// Opens the input port `wanted` names ([`choose_input`]), sending its key events stamped on
/// `clock`.
fn open_port(
    wanted: Option<&str>,
    clock: Instant,
    tx: Sender<(f64, KeyEvent)>,
) -> Result<(MidiInputConnection<()>, String)> {
    let (index, name) = choose_input(wanted)?;
    let midi = midi_in()?;
    let ports = midi.ports();
    let port = ports
        .get(index)
        .ok_or_else(|| anyhow!("the MIDI port went away"))?;
    let connection = midi
        .connect(
            port,
            "nanotune-in",
            move |_, bytes, _| {
                if let Some(event) = key_event(bytes) {
                    let _ = tx.send((clock.elapsed().as_secs_f64(), event));
                }
            },
            (),
        )
        .map_err(|e| anyhow!("cannot open MIDI input {name}: {e}"))?;
    Ok((connection, name))
}

/// A key event from a MIDI message's bytes: a key down or up (a note-on of velocity 0 is up),
/// or the sustain pedal; anything else is `None`.
pub fn key_event(bytes: &[u8]) -> Option<KeyEvent> {
    let LiveEvent::Midi { message, .. } = LiveEvent::parse(bytes).ok()? else {
        return None;
    };
    match message {
        MidiMessage::NoteOn { key, vel } if vel.as_int() > 0 => Some(KeyEvent::Down {
            pitch: key.as_int(),
            velocity: vel.as_int(),
        }),
        MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. } => Some(KeyEvent::Up {
            pitch: key.as_int(),
        }),
        MidiMessage::Controller { controller, value } if controller.as_int() == SUSTAIN_PEDAL => {
            Some(KeyEvent::Pedal(value.as_int() >= 64))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn midi_bytes_become_key_events() {
        assert_eq!(
            key_event(&[0x90, 60, 100]),
            Some(KeyEvent::Down {
                pitch: 60,
                velocity: 100
            })
        );
        assert_eq!(key_event(&[0x91, 60, 0]), Some(KeyEvent::Up { pitch: 60 }));
        assert_eq!(key_event(&[0x80, 61, 40]), Some(KeyEvent::Up { pitch: 61 }));
        assert_eq!(key_event(&[0xB0, 64, 127]), Some(KeyEvent::Pedal(true)));
        assert_eq!(key_event(&[0xB0, 64, 10]), Some(KeyEvent::Pedal(false)));
        assert_eq!(key_event(&[0xB0, 7, 100]), None, "volume is no key");
        assert_eq!(key_event(&[0xFE]), None, "active sensing");
        assert_eq!(key_event(&[0x90, 200]), None, "garbage");
        assert_eq!(key_event(&[]), None);
    }

    #[test]
    fn a_file_plays_its_keys_when_the_clock_reaches_them() {
        let path = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/examples/continuation.mid"
        ));
        // Fast, so the test is short: 1,200 bpm, half a second of lead.
        let piece = read_midi(&std::fs::read(&path).unwrap()).unwrap();
        let first = key_events(&piece, 1200.0)[0].0 + 0.5;
        let keys = KeySource::File(path).start(1200.0, 0.5).unwrap();
        let mut heard = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while heard.len() < 10 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            heard.extend(keys.arrived());
        }
        assert!(heard.len() >= 10, "{} events", heard.len());
        // Each comes at its time on the keys' clock, never before it, in order.
        assert!(
            (heard[0].0 - first).abs() < 1e-9,
            "{} vs {first}",
            heard[0].0
        );
        assert!(heard.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(heard.iter().all(|&(at, _)| at <= keys.now()));
        drop(keys);
        let missing = KeySource::File("/nonexistent.mid".into()).start(120.0, 0.0);
        assert!(format!("{:#}", missing.err().unwrap()).contains("/nonexistent.mid"));
    }
}
