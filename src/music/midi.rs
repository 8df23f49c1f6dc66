//! Standard MIDI Files in and out (via `midly`).
//!
//! Reading merges every track and channel except the drum channel (10) into one list of notes in
//! score time (quarter notes), with velocities, the tempo map and the sustain pedal kept for
//! playback. Writing turns grid notes into a one-track piano file at a chosen tempo.

use crate::music::notes::{Note, STEPS_PER_QUARTER};
use anyhow::{bail, Context, Result};
use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

/// MIDI channel 10 (9 counting from 0) is General MIDI percussion: skipped.
const DRUM_CHANNEL: u8 = 9;
/// Velocity of written notes (the grid carries no dynamics).
pub const DEFAULT_VELOCITY: u8 = 80;

/// Controller 64, the sustain (damper) pedal: values of 64 and above hold it down.
const SUSTAIN_PEDAL: u8 = 64;

/// A note read from a MIDI file, in quarter notes of score time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MidiNote {
    pub start: f64,
    /// Where the key is let go (what the grid and the words keep).
    pub end: f64,
    /// Where the note stops sounding: `end`, or later where the sustain pedal on its channel is
    /// down then, until the pedal is lifted or the same key is struck again (what playback uses).
    pub sustained_end: f64,
    pub pitch: u8,
    pub velocity: u8,
}

/// A tempo in force from `at` quarter notes on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TempoChange {
    pub at: f64,
    pub micros_per_quarter: f64,
}

/// What a MIDI file holds, merged.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MidiPiece {
    /// Sorted by start, then pitch.
    pub notes: Vec<MidiNote>,
    /// Sorted by time; starts at 0 (120 bpm unless the file says otherwise).
    pub tempo: Vec<TempoChange>,
    /// Notes on the drum channel, skipped.
    pub drum_notes: usize,
}

impl MidiPiece {
    /// Notes quantised onto the grid (not yet canonical): onset and duration rounded to sixteenths
    /// independently, duration at least one step.
    pub fn grid_notes(&self) -> Vec<Note> {
        let steps = STEPS_PER_QUARTER as f64;
        self.notes
            .iter()
            .map(|n| Note {
                onset: (n.start * steps).round() as u64,
                pitch: n.pitch,
                duration: (((n.end - n.start) * steps).round() as u32).max(1),
            })
            .collect()
    }

    /// Grid notes (a generated piece) at `bpm` quarter notes per minute, at the default velocity,
    /// with no pedal; sorted by start, then pitch.
    pub fn from_grid(notes: &[Note], bpm: f64) -> MidiPiece {
        let steps = STEPS_PER_QUARTER as f64;
        let mut piece = MidiPiece {
            notes: notes
                .iter()
                .map(|n| {
                    let end = (n.onset + n.duration as u64) as f64 / steps;
                    MidiNote {
                        start: n.onset as f64 / steps,
                        end,
                        sustained_end: end,
                        pitch: n.pitch,
                        velocity: DEFAULT_VELOCITY,
                    }
                })
                .collect(),
            tempo: vec![TempoChange {
                at: 0.0,
                micros_per_quarter: 60e6 / bpm,
            }],
            drum_notes: 0,
        };
        piece
            .notes
            .sort_by(|a, b| a.start.total_cmp(&b.start).then(a.pitch.cmp(&b.pitch)));
        piece
    }

    /// Seconds at a point in score time, following the tempo map.
    pub fn seconds_at(&self, quarters: f64) -> f64 {
        seconds_at(&self.tempo, quarters)
    }

    /// Tempo at the start, in beats per minute.
    pub fn initial_bpm(&self) -> f64 {
        60e6 / self
            .tempo
            .first()
            .map_or(500_000.0, |t| t.micros_per_quarter)
    }
}

/// Seconds at `quarters` under a tempo map (120 bpm before the first change).
pub fn seconds_at(tempo: &[TempoChange], quarters: f64) -> f64 {
    let mut seconds = 0.0;
    let mut at = 0.0;
    let mut micros = 500_000.0;
    for change in tempo {
        if change.at >= quarters {
            break;
        }
        seconds += (change.at - at) * micros / 1e6;
        at = change.at;
        micros = change.micros_per_quarter;
    }
    seconds + (quarters - at) * micros / 1e6
}

/// Quarters at `seconds` under a tempo map: the inverse of [`seconds_at`].
pub fn quarters_at(tempo: &[TempoChange], seconds: f64) -> f64 {
    let mut elapsed = 0.0;
    let mut at = 0.0;
    let mut micros = 500_000.0;
    for change in tempo {
        let reached = elapsed + (change.at - at) * micros / 1e6;
        if reached >= seconds {
            break;
        }
        elapsed = reached;
        at = change.at;
        micros = change.micros_per_quarter;
    }
    at + (seconds - elapsed) * 1e6 / micros
}

/// Parses a Standard MIDI File: formats 0 and 1 (tracks played together) and 2 (tracks played one
/// after another); metrical or SMPTE timing (SMPTE seconds become quarters at 120 bpm); running
/// status; NoteOn with velocity 0 as a note-off. Overlapping notes of one pitch and channel are
/// paired first-in, first-out; a note never switched off ends with its track.
pub fn read_midi(bytes: &[u8]) -> Result<MidiPiece> {
    check_chunks(bytes)?;
    let (header, tracks) = midly::parse(bytes).context("not a readable Standard MIDI File")?;
    let ticks_per_quarter = match header.timing {
        Timing::Metrical(ppq) if ppq.as_int() > 0 => ppq.as_int() as f64,
        Timing::Metrical(_) => bail!("the header says 0 ticks per quarter note"),
        // Seconds to quarters at 120 bpm: ticks/s divided by 2 quarters/s.
        Timing::Timecode(fps, sub) if sub > 0 => fps.as_f32() as f64 * sub as f64 / 2.0,
        Timing::Timecode(..) => bail!("the header says 0 ticks per SMPTE frame"),
    };
    let smpte = matches!(header.timing, Timing::Timecode(..));
    let mut piece = MidiPiece::default();
    let mut tempo_ticks: Vec<(u64, u32)> = Vec::new();
    let mut track_offset = 0u64;
    // Open notes per channel and pitch, oldest first: (start tick, velocity).
    let mut open: Vec<Vec<(u64, u8)>> = vec![Vec::new(); 16 * 128];
    // Every track's notes and pedal changes, in ticks, merged.
    let mut raw: Vec<RawNote> = Vec::new();
    let mut pedal: Vec<PedalChange> = Vec::new();
    let mut last_tick = 0u64;
    for (index, track) in tracks.enumerate() {
        let track = track.with_context(|| format!("track {} is damaged", index + 1))?;
        let mut tick = track_offset;
        for event in track {
            let event = event.with_context(|| format!("track {} is damaged", index + 1))?;
            tick += event.delta.as_int() as u64;
            match event.kind {
                TrackEventKind::Midi { channel, message } => {
                    let channel = channel.as_int();
                    let (key, on_velocity) = match message {
                        MidiMessage::NoteOn { key, vel } => (key.as_int(), vel.as_int()),
                        MidiMessage::NoteOff { key, .. } => (key.as_int(), 0),
                        MidiMessage::Controller { controller, value }
                            if controller.as_int() == SUSTAIN_PEDAL && channel != DRUM_CHANNEL =>
                        {
                            pedal.push(PedalChange {
                                tick,
                                channel,
                                down: value.as_int() >= 64,
                            });
                            continue;
                        }
                        _ => continue,
                    };
                    if channel == DRUM_CHANNEL {
                        piece.drum_notes += (on_velocity > 0) as usize;
                        continue;
                    }
                    let slot = &mut open[channel as usize * 128 + key as usize];
                    if on_velocity > 0 {
                        slot.push((tick, on_velocity));
                    } else if !slot.is_empty() {
                        let (start, velocity) = slot.remove(0);
                        raw.push(RawNote {
                            start,
                            end: tick,
                            channel,
                            key,
                            velocity,
                        });
                    }
                }
                TrackEventKind::Meta(MetaMessage::Tempo(micros)) if !smpte => {
                    tempo_ticks.push((tick, micros.as_int()));
                }
                _ => {}
            }
        }
        for (slot_index, slot) in open.iter_mut().enumerate() {
            for (start, velocity) in slot.drain(..) {
                raw.push(RawNote {
                    start,
                    end: tick,
                    channel: (slot_index / 128) as u8,
                    key: (slot_index % 128) as u8,
                    velocity,
                });
            }
        }
        last_tick = last_tick.max(tick);
        if header.format == Format::Sequential {
            track_offset = tick;
        }
    }
    let sustained = sustained_ends(&raw, &mut pedal, last_tick);
    piece.notes.extend(
        raw.iter()
            .zip(sustained)
            .map(|(n, sustained_end)| MidiNote {
                start: n.start as f64 / ticks_per_quarter,
                end: n.end as f64 / ticks_per_quarter,
                sustained_end: sustained_end as f64 / ticks_per_quarter,
                pitch: n.key,
                velocity: n.velocity,
            }),
    );
    piece
        .notes
        .sort_by(|a, b| a.start.total_cmp(&b.start).then(a.pitch.cmp(&b.pitch)));
    tempo_ticks.sort_by_key(|&(tick, _)| tick);
    piece.tempo = tempo_ticks
        .into_iter()
        .filter(|&(_, micros)| micros > 0)
        .map(|(tick, micros)| TempoChange {
            at: tick as f64 / ticks_per_quarter,
            micros_per_quarter: micros as f64,
        })
        .collect();
    if piece.tempo.first().is_none_or(|t| t.at > 0.0) {
        piece.tempo.insert(
            0,
            TempoChange {
                at: 0.0,
                micros_per_quarter: 500_000.0,
            },
        );
    }
    Ok(piece)
}

/// A note of one channel, in ticks.
struct RawNote {
    start: u64,
    end: u64,
    channel: u8,
    key: u8,
    velocity: u8,
}

/// The sustain pedal of one channel going down or up.
struct PedalChange {
    tick: u64,
    channel: u8,
    down: bool,
}

/// Where each note stops sounding, in ticks: at its end, unless the pedal on its channel is down
/// then (changes at the very tick of the note-off do not count); a held note sounds until the
/// pedal is lifted, the same key is struck again, or the piece ends at `last_tick`.
fn sustained_ends(notes: &[RawNote], pedal: &mut [PedalChange], last_tick: u64) -> Vec<u64> {
    // Stable: changes at one tick keep the files' order.
    pedal.sort_by_key(|p| (p.channel, p.tick));
    // Onsets per channel and key, sorted, for "struck again".
    let mut onsets: Vec<Vec<u64>> = vec![Vec::new(); 16 * 128];
    for n in notes {
        onsets[n.channel as usize * 128 + n.key as usize].push(n.start);
    }
    for list in &mut onsets {
        list.sort_unstable();
    }
    notes
        .iter()
        .map(|n| {
            let channel = {
                let from = pedal.partition_point(|p| p.channel < n.channel);
                let to = pedal.partition_point(|p| p.channel <= n.channel);
                &pedal[from..to]
            };
            let before = channel.partition_point(|p| p.tick < n.end);
            if before == 0 || !channel[before - 1].down {
                return n.end;
            }
            let lifted = channel[before..]
                .iter()
                .find(|p| !p.down)
                .map_or(last_tick, |p| p.tick);
            let list = &onsets[n.channel as usize * 128 + n.key as usize];
            let struck_again = list
                .get(list.partition_point(|&s| s < n.end))
                .copied()
                .unwrap_or(u64::MAX);
            lifted.min(struck_again).max(n.end)
        })
        .collect()
}

/// midly reads leniently and would take a cut-off file as a shorter piece; we would rather say
/// the file is damaged. Walks the chunk headers and checks each fits in the file.
fn check_chunks(bytes: &[u8]) -> Result<()> {
    if !bytes.starts_with(b"MThd") {
        // Leave the message for other shapes (RIFF-wrapped files, garbage) to midly.
        return Ok(());
    }
    let mut at = 0usize;
    let mut index = 0;
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        let remaining = bytes.len() - at - 8;
        if len as usize > remaining {
            let what = if index == 0 {
                "the header".to_string()
            } else {
                format!("chunk {index}")
            };
            bail!("the file is truncated: {what} claims {len} bytes but only {remaining} remain");
        }
        at += 8 + len as usize;
        index += 1;
    }
    // A few bytes left over where the header promised more tracks: cut inside a chunk header.
    let claimed_tracks = bytes
        .get(10..12)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    if at < bytes.len() && index - 1 < claimed_tracks as usize {
        bail!("the file is truncated: it ends inside the header of chunk {index}");
    }
    Ok(())
}

/// Writes grid notes as a one-track Standard MIDI File: piano (program 0), the tempo of `bpm`,
/// fixed velocity (through [`write_midi_piece`], the one writer).
pub fn write_midi(notes: &[Note], bpm: f64) -> Result<Vec<u8>> {
    if !(bpm.is_finite() && (1.0..=1000.0).contains(&bpm)) {
        bail!("tempo {bpm} bpm is outside 1..=1000");
    }
    write_midi_piece(&MidiPiece::from_grid(notes, bpm), "nanotune")
}

/// Ticks per quarter note of [`write_midi_piece`]: fine enough (over 8 times the resolution of any
/// file under 3840 ticks per quarter) that rounding a note's start and end to it never moves
/// them across a sixteenth's rounding boundary, so the file encodes to the same words, and
/// divisible by the usual resolutions (96 ... 960, 1024) so those land exactly.
const PIECE_PPQ: u16 = 30_720;

/// Writes a piece read from (or sent as) MIDI back as a one-track Standard MIDI File, keeping its
/// tempo map and velocities, with `title` as the track name. Notes of one pitch that overlap go
/// to separate channels (never the drum channel) where pairing note-offs first-in, first-out
/// would otherwise swap their ends, so the file reads back as the same notes.
pub fn write_midi_piece(piece: &MidiPiece, title: &str) -> Result<Vec<u8>> {
    let tick = |quarters: f64| -> Result<u64> {
        if !(quarters.is_finite() && quarters >= 0.0) {
            bail!("a time of {quarters} quarter notes cannot be written");
        }
        let t = (quarters * PIECE_PPQ as f64).round();
        if t > (1u64 << 40) as f64 {
            bail!("the piece is too long for a MIDI file");
        }
        Ok(t as u64)
    };
    // (tick, kind, channel, pitch, velocity). At one tick: a tempo change first, then the
    // note-offs of notes struck before (so a key struck again where it was let go reads back as
    // two notes in any reader), then the note-ons, then the note-offs of notes of no length
    // (switched on before they are switched off).
    const TEMPO: u8 = 0;
    const OFF: u8 = 1;
    const ON: u8 = 2;
    const OFF_AT_ONCE: u8 = 3;
    let mut events: Vec<(u64, u8, u8, u8, u32)> = Vec::with_capacity(piece.notes.len() * 2 + 4);
    for change in &piece.tempo {
        let micros = change
            .micros_per_quarter
            .round()
            .clamp(1.0, 0xFF_FFFF as f64) as u32;
        events.push((tick(change.at)?, TEMPO, 0, 0, micros));
    }
    // The end of the latest note on each channel and pitch: a note may join a channel only if it
    // ends no earlier, which is what first-in, first-out pairing assumes.
    let mut last_end: Vec<Option<u64>> = vec![None; 16 * 128];
    let channels = (0u8..16).filter(|&c| c != DRUM_CHANNEL);
    let mut used = [false; 16];
    let mut notes: Vec<&MidiNote> = piece.notes.iter().collect();
    notes.sort_by(|a, b| a.start.total_cmp(&b.start));
    for n in notes {
        let (on, off) = (tick(n.start)?, tick(n.end.max(n.start))?);
        let pitch = n.pitch.min(127);
        let slot = |c: u8| c as usize * 128 + pitch as usize;
        let channel = channels
            .clone()
            .find(|&c| last_end[slot(c)].is_none_or(|end| end <= off))
            // More overlapping notes of one pitch than channels: the earliest-ending channel.
            .unwrap_or_else(|| {
                channels
                    .clone()
                    .min_by_key(|&c| last_end[slot(c)])
                    .expect("15 channels")
            });
        last_end[slot(channel)] = Some(off);
        used[channel as usize] = true;
        let velocity = n.velocity.clamp(1, 127) as u32;
        events.push((on, ON, channel, pitch, velocity));
        events.push((
            off,
            if off > on { OFF } else { OFF_AT_ONCE },
            channel,
            pitch,
            0,
        ));
    }
    // Stable: notes keep their order within a tick, as first-in, first-out pairing needs.
    events.sort_by_key(|&(tick, kind, ..)| (tick, kind));

    let mut track: Vec<TrackEvent> = vec![
        TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::TrackName(title.as_bytes())),
        },
        meta(MetaMessage::TimeSignature(4, 2, 24, 8)),
    ];
    for channel in (0u8..16).filter(|&c| used[c as usize]) {
        track.push(TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Midi {
                channel: u4::new(channel),
                message: MidiMessage::ProgramChange {
                    program: u7::new(0),
                },
            },
        });
    }
    let mut last = 0u64;
    for (tick, kind, channel, pitch, value) in events {
        let delta = carry_long_delta(&mut track, tick - last);
        last = tick;
        let key = u7::new(pitch);
        let kind = match kind {
            TEMPO => TrackEventKind::Meta(MetaMessage::Tempo(u24::new(value))),
            ON => TrackEventKind::Midi {
                channel: u4::new(channel),
                message: MidiMessage::NoteOn {
                    key,
                    vel: u7::new(value as u8),
                },
            },
            _ => TrackEventKind::Midi {
                channel: u4::new(channel),
                message: MidiMessage::NoteOff {
                    key,
                    vel: u7::new(0),
                },
            },
        };
        track.push(TrackEvent {
            delta: u28::new(delta),
            kind,
        });
    }
    track.push(meta(MetaMessage::EndOfTrack));
    let smf = Smf {
        header: Header::new(Format::SingleTrack, Timing::Metrical(u15::new(PIECE_PPQ))),
        tracks: vec![track],
    };
    let mut out = Vec::new();
    smf.write_std(&mut out).context("writing MIDI")?;
    Ok(out)
}

/// Pushes empty text events for the part of `delta` beyond 28 bits (over a day of music at
/// ordinary resolutions); returns what is left for the next event.
fn carry_long_delta(track: &mut Vec<TrackEvent>, mut delta: u64) -> u32 {
    while delta > 0x0FFF_FFFF {
        track.push(TrackEvent {
            delta: u28::new(0x0FFF_FFFF),
            kind: TrackEventKind::Meta(MetaMessage::Text(b"")),
        });
        delta -= 0x0FFF_FFFF;
    }
    delta as u32
}

fn meta(message: MetaMessage<'static>) -> TrackEvent<'static> {
    TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_writer_lets_a_key_go_before_striking_it_again_and_ends_empty_notes_after() {
        let note = |start: f64, end: f64, pitch: u8| MidiNote {
            start,
            end,
            sustained_end: end,
            pitch,
            velocity: 90,
        };
        let piece = MidiPiece {
            notes: vec![note(0.0, 1.0, 60), note(1.0, 2.0, 60), note(2.0, 2.0, 64)],
            tempo: vec![TempoChange {
                at: 0.0,
                micros_per_quarter: 500_000.0,
            }],
            drum_notes: 0,
        };
        let bytes = write_midi_piece(&piece, "t").unwrap();
        let smf = Smf::parse(&bytes).unwrap();
        let mut tick = 0u32;
        let mut keys = Vec::new();
        for event in &smf.tracks[0] {
            tick += event.delta.as_int();
            if let TrackEventKind::Midi { message, .. } = event.kind {
                match message {
                    MidiMessage::NoteOn { key, .. } => keys.push((tick, "on", key.as_int())),
                    MidiMessage::NoteOff { key, .. } => keys.push((tick, "off", key.as_int())),
                    _ => {}
                }
            }
        }
        let q = PIECE_PPQ as u32;
        assert_eq!(
            keys,
            [
                (0, "on", 60),
                (q, "off", 60),
                (q, "on", 60),
                (2 * q, "off", 60),
                (2 * q, "on", 64),
                (2 * q, "off", 64)
            ]
        );
        assert_eq!(read_midi(&bytes).unwrap().notes, piece.notes);
        // Grid notes go through the same writer.
        let grid = [
            Note {
                onset: 0,
                pitch: 60,
                duration: 4,
            },
            Note {
                onset: 4,
                pitch: 60,
                duration: 4,
            },
        ];
        let back = read_midi(&write_midi(&grid, 120.0).unwrap()).unwrap();
        assert_eq!(back.grid_notes(), grid);
    }

    #[test]
    fn written_notes_read_back_exactly() {
        let notes = vec![
            Note {
                onset: 0,
                pitch: 72,
                duration: 4,
            },
            Note {
                onset: 0,
                pitch: 60,
                duration: 8,
            },
            Note {
                onset: 4,
                pitch: 72,
                duration: 1,
            },
            Note {
                onset: 5,
                pitch: 72,
                duration: 128,
            },
        ];
        let bytes = write_midi(&notes, 90.0).unwrap();
        let piece = read_midi(&bytes).unwrap();
        let mut back = piece.grid_notes();
        back.sort();
        let mut want = notes.clone();
        want.sort();
        assert_eq!(back, want);
        assert!((piece.initial_bpm() - 90.0).abs() < 0.01);
    }

    #[test]
    fn a_piece_written_back_reads_as_the_same_notes_tempo_and_velocities() {
        let note = |start: f64, end: f64, pitch: u8, velocity: u8| MidiNote {
            start,
            end,
            sustained_end: end,
            pitch,
            velocity,
        };
        let piece = MidiPiece {
            notes: vec![
                // One pitch struck while it still sounds, the first ending last (two channels).
                note(0.0, 3.0, 60, 90),
                note(1.0, 2.0, 60, 40),
                // A re-struck pitch, a note of no length, and a third of a beat.
                note(2.0, 2.5, 64, 127),
                note(2.5, 2.5, 64, 1),
                note(1.0 / 3.0, 2.0 / 3.0, 67, 70),
            ],
            tempo: vec![
                TempoChange {
                    at: 0.0,
                    micros_per_quarter: 400_000.0,
                },
                TempoChange {
                    at: 2.0,
                    micros_per_quarter: 750_000.0,
                },
            ],
            drum_notes: 0,
        };
        let back = read_midi(&write_midi_piece(&piece, "../x").unwrap()).unwrap();
        let mut want = piece.notes.clone();
        want.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.pitch.cmp(&b.pitch)));
        assert_eq!(back.notes.len(), want.len());
        for (got, want) in back.notes.iter().zip(&want) {
            assert_eq!((got.pitch, got.velocity), (want.pitch, want.velocity));
            assert!((got.start - want.start).abs() < 1e-4 && (got.end - want.end).abs() < 1e-4);
        }
        assert_eq!(back.tempo, piece.tempo);
    }

    #[test]
    fn tempo_map_gives_seconds() {
        let tempo = vec![
            TempoChange {
                at: 0.0,
                micros_per_quarter: 500_000.0,
            },
            TempoChange {
                at: 4.0,
                micros_per_quarter: 1_000_000.0,
            },
        ];
        assert!((seconds_at(&tempo, 4.0) - 2.0).abs() < 1e-9);
        assert!((seconds_at(&tempo, 6.0) - 4.0).abs() < 1e-9);
        // And back: quarters_at undoes seconds_at on either side of a change.
        for q in [0.0, 1.5, 4.0, 7.25, 33.0] {
            let back = quarters_at(&tempo, seconds_at(&tempo, q));
            assert!((back - q).abs() < 1e-9, "{q} -> {back}");
        }
        assert_eq!(quarters_at(&[], 3.0), 6.0);
    }

    #[test]
    fn the_sustain_pedal_holds_notes_on_its_channel() {
        let event = |delta: u32, channel: u8, message| TrackEvent {
            delta: u28::new(delta),
            kind: TrackEventKind::Midi {
                channel: u4::new(channel),
                message,
            },
        };
        let on = |key: u8| MidiMessage::NoteOn {
            key: u7::new(key),
            vel: u7::new(90),
        };
        let off = |key: u8| MidiMessage::NoteOff {
            key: u7::new(key),
            vel: u7::new(0),
        };
        let pedal = |value: u8| MidiMessage::Controller {
            controller: u7::new(64),
            value: u7::new(value),
        };
        // 480 ticks a quarter. Channel 0: the pedal goes down at 1/2, up at 2 and down again
        // at 3 (at the very tick F's key is let go), never lifted after.
        let track = vec![
            event(0, 0, on(60)),
            event(0, 0, on(64)),
            event(0, 1, on(67)),
            event(240, 0, pedal(127)),
            event(240, 0, off(60)), // 1: held to the pedal's lift at 2
            event(0, 0, off(64)),   // 1: held until E is struck again at 1.5
            event(0, 1, off(67)),   // 1: another channel's pedal, not held
            event(240, 0, on(64)),
            event(240, 0, off(64)), // 2: the lift at the same tick does not hold it
            event(0, 0, pedal(0)),
            event(0, 0, on(65)),
            event(480, 0, pedal(100)),
            event(0, 0, off(65)), // 3: the pedal went down at this very tick: not held
            event(0, 0, on(62)),
            event(240, 0, off(62)), // 3.5: held to the end of the piece at 5
            event(720, 0, pedal(20)),
            meta(MetaMessage::EndOfTrack),
        ];
        let smf = Smf {
            header: Header::new(Format::SingleTrack, Timing::Metrical(u15::new(480))),
            tracks: vec![track],
        };
        let mut bytes = Vec::new();
        smf.write_std(&mut bytes).unwrap();
        let piece = read_midi(&bytes).unwrap();
        let ends: Vec<(f64, u8, f64, f64)> = piece
            .notes
            .iter()
            .map(|n| (n.start, n.pitch, n.end, n.sustained_end))
            .collect();
        assert_eq!(
            ends,
            vec![
                (0.0, 60, 1.0, 2.0),
                (0.0, 64, 1.0, 1.5),
                (0.0, 67, 1.0, 1.0),
                (1.5, 64, 2.0, 2.0),
                (2.0, 65, 3.0, 3.0),
                (3.0, 62, 3.5, 5.0),
            ]
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(read_midi(b"").is_err());
        // A header that claims 65,535 tracks and holds none must not panic or allocate them.
        let _ = read_midi(b"MThd\0\0\0\x06\0\x01\xff\xff\x01\xe0");
        assert!(write_midi(&[], 0.0).is_err());
        let far = Note {
            onset: u64::MAX / 2,
            pitch: 60,
            duration: 1,
        };
        assert!(write_midi(&[far], 120.0).is_err());
    }
}
