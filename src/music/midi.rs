//! Standard MIDI Files in and out (via `midly`).
//!
//! Reading merges every track and channel except the drum channel (10) into one list of notes in
//! score time (quarter notes), with velocities and the tempo map kept for playback. Writing turns
//! grid notes into a one-track piano file at a chosen tempo.

use crate::music::notes::{Note, STEPS_PER_QUARTER};
use anyhow::{bail, Context, Result};
use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

/// MIDI channel 10 (9 counting from 0) is General MIDI percussion: skipped.
const DRUM_CHANNEL: u8 = 9;
/// Ticks per quarter note of the files we write: 120 ticks per grid step.
const WRITE_PPQ: u16 = 480;
/// Velocity of written notes (the grid carries no dynamics).
pub const DEFAULT_VELOCITY: u8 = 80;

/// A note read from a MIDI file, in quarter notes of score time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MidiNote {
    pub start: f64,
    pub end: f64,
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
    for (index, track) in tracks.enumerate() {
        let track = track.with_context(|| format!("track {} is damaged", index + 1))?;
        let mut tick = track_offset;
        let mut raw: Vec<(u64, u64, u8, u8)> = Vec::new();
        for event in track {
            let event = event.with_context(|| format!("track {} is damaged", index + 1))?;
            tick += event.delta.as_int() as u64;
            match event.kind {
                TrackEventKind::Midi { channel, message } => {
                    let (key, on_velocity) = match message {
                        MidiMessage::NoteOn { key, vel } => (key.as_int(), vel.as_int()),
                        MidiMessage::NoteOff { key, .. } => (key.as_int(), 0),
                        _ => continue,
                    };
                    let channel = channel.as_int();
                    if channel == DRUM_CHANNEL {
                        piece.drum_notes += (on_velocity > 0) as usize;
                        continue;
                    }
                    let slot = &mut open[channel as usize * 128 + key as usize];
                    if on_velocity > 0 {
                        slot.push((tick, on_velocity));
                    } else if !slot.is_empty() {
                        let (start, velocity) = slot.remove(0);
                        raw.push((start, tick, key, velocity));
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
                raw.push((start, tick, (slot_index % 128) as u8, velocity));
            }
        }
        piece.notes.extend(
            raw.into_iter()
                .map(|(start, end, pitch, velocity)| MidiNote {
                    start: start as f64 / ticks_per_quarter,
                    end: end as f64 / ticks_per_quarter,
                    pitch,
                    velocity,
                }),
        );
        if header.format == Format::Sequential {
            track_offset = tick;
        }
    }
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
/// fixed velocity. At equal ticks note-offs come before note-ons, so a re-struck pitch reads
/// back as two notes.
pub fn write_midi(notes: &[Note], bpm: f64) -> Result<Vec<u8>> {
    if !(bpm.is_finite() && (1.0..=1000.0).contains(&bpm)) {
        bail!("tempo {bpm} bpm is outside 1..=1000");
    }
    let ticks_per_step = (WRITE_PPQ as u32 / STEPS_PER_QUARTER) as u64;
    // (tick, 0 = off / 1 = on, pitch)
    let mut timed: Vec<(u64, u8, u8)> = Vec::with_capacity(notes.len() * 2);
    for n in notes {
        let on = n.onset.saturating_mul(ticks_per_step);
        let off = on.saturating_add(n.duration as u64 * ticks_per_step);
        timed.push((on, 1, n.pitch.min(127)));
        timed.push((off, 0, n.pitch.min(127)));
    }
    timed.sort_unstable();
    // Beyond this (about 70 years at 120 bpm) the words are hostile, not music: refuse rather
    // than write billions of padding events.
    if timed.last().is_some_and(|&(tick, _, _)| tick > 1 << 40) {
        bail!("the piece is too long for a MIDI file");
    }

    let micros = (60e6 / bpm).round() as u32;
    let mut track: Vec<TrackEvent> = vec![
        meta(MetaMessage::TrackName(b"nanotune")),
        meta(MetaMessage::Tempo(u24::new(micros.min(0xFF_FFFF)))),
        meta(MetaMessage::TimeSignature(4, 2, 24, 8)),
        TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Midi {
                channel: u4::new(0),
                message: MidiMessage::ProgramChange {
                    program: u7::new(0),
                },
            },
        },
    ];
    let mut last = 0u64;
    for (tick, on, pitch) in timed {
        let mut delta = tick - last;
        // A delta beyond 28 bits (over a day of music) is carried by empty text events.
        while delta > 0x0FFF_FFFF {
            track.push(TrackEvent {
                delta: u28::new(0x0FFF_FFFF),
                kind: TrackEventKind::Meta(MetaMessage::Text(b"")),
            });
            delta -= 0x0FFF_FFFF;
        }
        let key = u7::new(pitch);
        let message = if on == 1 {
            MidiMessage::NoteOn {
                key,
                vel: u7::new(DEFAULT_VELOCITY),
            }
        } else {
            MidiMessage::NoteOff {
                key,
                vel: u7::new(0),
            }
        };
        track.push(TrackEvent {
            delta: u28::new(delta as u32),
            kind: TrackEventKind::Midi {
                channel: u4::new(0),
                message,
            },
        });
        last = tick;
    }
    track.push(meta(MetaMessage::EndOfTrack));
    let smf = Smf {
        header: Header::new(Format::SingleTrack, Timing::Metrical(u15::new(WRITE_PPQ))),
        tracks: vec![track],
    };
    let mut out = Vec::new();
    smf.write_std(&mut out).context("writing MIDI")?;
    Ok(out)
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
    // (tick, kind, channel, pitch, velocity); kind 0 = tempo, 1 = note-on, 2 = note-off, so at
    // equal ticks a tempo change comes first and note-ons before note-offs (a note of no length
    // must be switched on before it is switched off).
    let mut events: Vec<(u64, u8, u8, u8, u32)> = Vec::with_capacity(piece.notes.len() * 2 + 4);
    for change in &piece.tempo {
        let micros = change
            .micros_per_quarter
            .round()
            .clamp(1.0, 0xFF_FFFF as f64) as u32;
        events.push((tick(change.at)?, 0, 0, 0, micros));
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
        events.push((on, 1, channel, pitch, velocity));
        events.push((off, 2, channel, pitch, 0));
    }
    // Stable: notes keep their order within a tick, as first-in, first-out pairing needs.
    events.sort_by_key(|&(tick, kind, ..)| (tick, kind));

    let mut track: Vec<TrackEvent> = vec![TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::TrackName(title.as_bytes())),
    }];
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
            0 => TrackEventKind::Meta(MetaMessage::Tempo(u24::new(value))),
            1 => TrackEventKind::Midi {
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
