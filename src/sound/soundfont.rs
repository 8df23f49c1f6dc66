//! The SoundFont voice: a General MIDI SoundFont (.sf2) played by rustysynth, program 0 (the
//! acoustic grand piano) on one channel, with the notes' own velocities.
//!
//! [`SoundFont::load`] reads and checks a file once (slow for large fonts: share the result, it
//! is cheap to clone); [`find`] says which file to use when none is named. A damaged or foreign
//! file is one line of error naming the file, never a panic: the RIFF chunks are checked against
//! the file's length before rustysynth parses them (it trusts the sizes it reads), and its
//! parsing, a trial of every key and later rendering run under `catch_unwind` (it indexes tables
//! with numbers taken from the file).

use crate::recover::panic_text;
use crate::sound::format::{peak, Format, BLOCK, QUIET_SECONDS, SILENT};
use crate::sound::timed::{playable, TimedNote};
use anyhow::{anyhow, bail, Result};
use rustysynth::{SoundFontError, Synthesizer, SynthesizerSettings};
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The environment variable that names a SoundFont (and asks for the SoundFont voice).
pub const ENV_VAR: &str = "NANOTUNE_SOUNDFONT";
/// Voices at once, the most rustysynth allows: a dense piece under the pedal needs many.
const POLYPHONY: usize = 256;
/// Seconds the reverb rings after the piano's own release.
const REVERB_TAIL: f64 = 0.5;
/// rustysynth's master volume (its default is 0.5): about as loud as the built-in voice on the
/// same piece, with General MIDI fonts' pianos; the limiter after it catches dense chords.
const MASTER_VOLUME: f32 = 1.3;
/// The rendering's last seconds fade to silence (whatever still rings is not cut with a click).
const FADE_SECONDS: f64 = 0.05;

/// A loaded SoundFont, shared (clones share the samples).
#[derive(Clone)]
pub struct SoundFont {
    path: PathBuf,
    /// The file's name, links followed.
    name: String,
    font: Arc<rustysynth::SoundFont>,
    preset: String,
    /// Seconds each key rings after its note-off.
    tails: Arc<[f64; 128]>,
}

impl fmt::Debug for SoundFont {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoundFont")
            .field("path", &self.path)
            .field("preset", &self.preset)
            .finish()
    }
}

impl SoundFont {
    /// Reads and checks a SoundFont. The error is one line that names the file.
    pub fn load(path: &Path) -> Result<SoundFont> {
        let shown = path.display();
        let bytes = std::fs::read(path).map_err(|e| anyhow!("{shown}: cannot read it: {e}"))?;
        check_chunks(&bytes).map_err(|why| anyhow!("{shown}: {why}"))?;
        let parsed = quietly(|| rustysynth::SoundFont::new(&mut std::io::Cursor::new(&bytes)));
        let font = match parsed {
            Ok(Ok(font)) => Arc::new(font),
            Ok(Err(SoundFontError::UnsupportedSampleFormat)) => bail!(
                "{shown}: a compressed SoundFont 3 file, which the synth cannot read: use an .sf2"
            ),
            Ok(Err(SoundFontError::IoError(_))) => {
                bail!("{shown}: truncated: the SoundFont ends inside its data")
            }
            Ok(Err(e)) => bail!("{shown}: a damaged SoundFont: {e}"),
            Err(panic) => bail!("{shown}: a damaged SoundFont (the synth failed on it: {panic})"),
        };
        drop(bytes);
        let (preset, tails) = piano_preset(&font);
        // Its tables are read only once notes play: try every key now, where an error can
        // still be reported as the file's.
        quietly(|| try_every_key(&font)).map_err(|panic| {
            anyhow!("{shown}: a damaged SoundFont (its piano fails to play: {panic})")
        })?;
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let name = real.file_name().unwrap_or(real.as_os_str());
        Ok(SoundFont {
            path: path.to_path_buf(),
            name: name.to_string_lossy().into_owned(),
            font,
            preset,
            tails: Arc::new(tails),
        })
    }

    /// The file, as named or found.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's name, links followed (Debian's default-GM.sf2 names the font it points to).
    pub fn file_name(&self) -> &str {
        &self.name
    }

    /// The name of the preset that plays: General MIDI program 0 where the font has it.
    pub fn preset(&self) -> &str {
        &self.preset
    }

    /// Seconds a key rings after its note-off: the piano's release there, and the reverb.
    pub fn tail_seconds(&self, key: u8) -> f64 {
        self.tails[key.min(127) as usize]
    }

    /// Seconds the rendering of `notes` lasts: the latest a note stops ringing (0 when there
    /// are no notes). Silent notes count, as with the built-in voice.
    pub fn length_seconds(&self, notes: &[TimedNote]) -> f64 {
        playable(notes)
            .iter()
            .map(|n| n.end() + self.tail_seconds(n.pitch))
            .fold(0.0, f64::max)
    }

    /// Whether the synth renders at this format's sample rate (16 to 192 kHz).
    pub fn check_format(&self, format: Format) -> Result<()> {
        Synthesizer::new(&self.font, &settings(format.sample_rate))
            .map(|_| ())
            .map_err(|e| anyhow!("the SoundFont voice cannot play here: {e}"))
    }

    /// A performer of `notes` (playable ones:
    /// [`crate::sound::timed::playable`]) at `format`'s sample rate, in blocks of [`BLOCK`] frames.
    pub(crate) fn performer(&self, notes: &[TimedNote], format: Format) -> Result<Performer> {
        let synth = Synthesizer::new(&self.font, &settings(format.sample_rate))
            .map_err(|e| anyhow!("the SoundFont voice cannot play here: {e}"))?;
        Ok(Performer::new(synth, notes, format.sample_rate, self))
    }
}

fn settings(sample_rate: u32) -> SynthesizerSettings {
    let mut settings = SynthesizerSettings::new(sample_rate.min(i32::MAX as u32) as i32);
    settings.block_size = BLOCK;
    settings.maximum_polyphony = POLYPHONY;
    settings
}

/// Walks the RIFF chunks (the top level and each LIST's) and checks that each fits inside its
/// parent and the file. Says what is wrong, in words.
fn check_chunks(bytes: &[u8]) -> Result<(), String> {
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    let id = |at: usize| {
        String::from_utf8_lossy(&bytes[at..at + 4])
            .escape_debug()
            .to_string()
    };
    let size = |at: usize| u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
    let riff_prefix = &b"RIFF"[..bytes.len().min(4)];
    if !bytes.starts_with(riff_prefix) {
        return Err("not a SoundFont (it is not a RIFF file)".into());
    }
    if bytes.len() < 12 {
        return Err(format!(
            "truncated: {} bytes, too short for a SoundFont header",
            bytes.len()
        ));
    }
    if &bytes[8..12] != b"sfbk" {
        return Err(format!(
            "not a SoundFont (a RIFF file of type '{}', not 'sfbk')",
            id(8)
        ));
    }
    let riff_end = 8 + size(0);
    if riff_end > bytes.len() {
        return Err(format!(
            "truncated: the file claims {riff_end} bytes but has {}",
            bytes.len()
        ));
    }
    let mut at = 12;
    while at < riff_end {
        if at + 8 > riff_end {
            return Err(format!(
                "damaged: it ends inside a chunk header at byte {at}"
            ));
        }
        let end = at + 8 + size(at);
        if end > riff_end {
            return Err(format!(
                "truncated: the '{}' chunk at byte {at} claims {} bytes but only {} remain",
                id(at),
                size(at),
                riff_end - at - 8
            ));
        }
        if &bytes[at..at + 4] == b"LIST" {
            if at + 12 > end {
                return Err(format!("damaged: an empty LIST chunk at byte {at}"));
            }
            let mut sub = at + 12;
            while sub < end {
                if sub + 8 > end || sub + 8 + size(sub) > end {
                    return Err(format!(
                        "truncated: the '{}' chunk in the '{}' list claims more bytes than remain",
                        id(sub.min(end - 4)),
                        id(at + 8)
                    ));
                }
                sub += 8 + size(sub);
            }
        }
        at = end;
    }
    Ok(())
}

/// The preset that plays program 0 on channel 0: bank 0's program 0, else the font's lowest
/// (as rustysynth picks it).
fn piano(font: &rustysynth::SoundFont) -> Option<&rustysynth::Preset> {
    let id = |p: &rustysynth::Preset| (p.get_bank_number() << 16) | p.get_patch_number();
    font.get_presets().iter().min_by_key(|p| id(p))
}

/// The name of the preset that plays (see [`piano`]) and
/// the seconds each key rings after note-off: its longest release to -60 dB (the treble of a
/// piano has no dampers: seconds), and the reverb's.
fn piano_preset(font: &rustysynth::SoundFont) -> (String, [f64; 128]) {
    let mut release = [0.0f64; 128];
    let preset = piano(font);
    let instruments = font.get_instruments();
    for region in preset.map_or(&[][..], |p| p.get_regions()) {
        let Some(instrument) = instruments.get(region.get_instrument_id()) else {
            continue;
        };
        for inner in instrument.get_regions() {
            // Preset generators scale the instrument's times.
            let seconds = inner.get_release_volume_envelope() as f64
                * region.get_release_volume_envelope() as f64;
            let keys = inner
                .get_key_range_start()
                .max(region.get_key_range_start())
                ..=inner.get_key_range_end().min(region.get_key_range_end());
            for key in keys.filter(|k| (0..128).contains(k)) {
                release[key as usize] = release[key as usize].max(seconds);
            }
        }
    }
    // rustysynth's release falls 80 dB over the release time; it goes silent at -60 dB.
    let tails = release.map(|r| (0.75 * r).clamp(0.05, 3.0) + REVERB_TAIL);
    let name = preset.map_or(String::new(), |p| p.get_name().trim().to_string());
    (name, tails)
}

/// Plays every key at every velocity layer of the piano through a synthesizer: a font whose
/// tables point outside themselves panics here rather than during a piece.
fn try_every_key(font: &Arc<rustysynth::SoundFont>) {
    let Ok(mut synth) = Synthesizer::new(font, &settings(44_100)) else {
        return;
    };
    let mut velocities = vec![127];
    if let Some(preset) = piano(font) {
        for region in preset.get_regions() {
            velocities.push(region.get_velocity_range_start());
            let instrument = font.get_instruments().get(region.get_instrument_id());
            for inner in instrument.map_or(&[][..], |i| i.get_regions()) {
                velocities.push(inner.get_velocity_range_start());
            }
        }
    }
    velocities.iter_mut().for_each(|v| *v = (*v).clamp(1, 127));
    velocities.sort_unstable();
    velocities.dedup();
    let mut left = vec![0.0f32; 4 * 1024];
    let mut right = vec![0.0f32; 4 * 1024];
    for velocity in velocities {
        for key in 0..128 {
            synth.note_on(0, key, velocity);
        }
        synth.render(&mut left, &mut right);
        synth.note_off_all(false);
        synth.render(&mut left, &mut right);
    }
}

std::thread_local! {
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, turning a panic into its message, without the panic printing anything (the panic
/// hook stays silent on this thread meanwhile, and behaves as before everywhere else).
fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                previous(info)
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    out.map_err(|panic| panic_text(&*panic))
}

/// A note-on or note-off, at a frame.
#[derive(Clone, Copy, Debug)]
struct Event {
    frame: u64,
    /// 0 is note-off.
    velocity: u8,
    key: u8,
}

/// Plays timed notes through a rustysynth synthesizer, one block at a time.
pub(crate) struct Performer {
    /// None once it has failed.
    synth: Option<Synthesizer>,
    events: Vec<Event>,
    next: usize,
    fade_from: u64,
    total: u64,
    sample_rate: f64,
    failure: Option<String>,
    held: usize,
    most_held: usize,
    /// Frames of silence the synth has given in a row, and how many let it rest.
    quiet: u64,
    quiet_limit: u64,
}

impl Performer {
    fn new(
        mut synth: Synthesizer,
        notes: &[TimedNote],
        sample_rate: u32,
        font: &SoundFont,
    ) -> Performer {
        // General MIDI program 0 on channel 0 (what rustysynth starts with; said for the reader).
        synth.process_midi_message(0, 0xC0, 0, 0);
        synth.set_master_volume(MASTER_VOLUME);
        let mut performer = Performer {
            synth: Some(synth),
            events: Vec::with_capacity(2 * notes.len()),
            next: 0,
            fade_from: 0,
            total: 0,
            sample_rate: sample_rate as f64,
            failure: None,
            held: 0,
            most_held: 0,
            quiet: 0,
            quiet_limit: (QUIET_SECONDS * sample_rate as f64) as u64,
        };
        performer.append(notes, font);
        performer
    }

    /// More notes (playable ones), for a piece still being made: those not yet struck are
    /// ordered again with them, and the end (and its fade) moves to their last tail.
    pub(crate) fn append(&mut self, notes: &[TimedNote], font: &SoundFont) {
        let sr = self.sample_rate;
        let frame = |t: f64| (t * sr).round().max(0.0) as u64;
        for n in notes.iter().filter(|n| n.velocity > 0) {
            let (key, on) = (n.pitch.min(127), frame(n.start));
            self.events.push(Event {
                frame: on,
                velocity: n.velocity.min(127),
                key,
            });
            // At least a frame later, so that it follows its note-on even within one block.
            self.events.push(Event {
                frame: frame(n.end()).max(on + 1),
                velocity: 0,
                key,
            });
        }
        // At one frame, note-offs first: a key struck again sounds again.
        self.events[self.next..].sort_by_key(|e| (e.frame, e.velocity > 0));
        self.total = self.total.max(frame(font.length_seconds(notes)));
        self.fade_from = self.total.saturating_sub(frame(FADE_SECONDS));
    }

    /// Frames the rendering lasts: the last note-off plus the font's tail.
    pub(crate) fn total_frames(&self) -> u64 {
        self.total
    }

    /// The most notes held at once so far.
    pub(crate) fn most_held(&self) -> usize {
        self.most_held
    }

    /// Why the synth stopped (a panic inside it), if it did: the rest is silence.
    pub(crate) fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Renders frames `block_start..block_start + BLOCK` into `left` and `right` (each
    /// [`BLOCK`] long). Events start at the block boundary nearest them. After a stretch of
    /// silence the synth rests (its reverb costs as much as notes) until the next event.
    pub(crate) fn render_block(&mut self, block_start: u64, left: &mut [f32], right: &mut [f32]) {
        let until = block_start + BLOCK as u64 / 2;
        let due = self.events.get(self.next).is_some_and(|e| e.frame < until);
        let (Some(synth), false) = (self.synth.as_mut(), !due && self.quiet > self.quiet_limit)
        else {
            left.fill(0.0);
            right.fill(0.0);
            return;
        };
        while let Some(e) = self.events.get(self.next).filter(|e| e.frame < until) {
            if e.velocity > 0 {
                synth.note_on(0, e.key as i32, e.velocity as i32);
                self.held += 1;
                self.most_held = self.most_held.max(self.held);
            } else {
                synth.note_off(0, e.key as i32);
                self.held = self.held.saturating_sub(1);
            }
            self.next += 1;
        }
        if let Err(panic) = quietly(|| synth.render(left, right)) {
            self.failure = Some(panic);
            self.synth = None;
            left.fill(0.0);
            right.fill(0.0);
            return;
        }
        self.quiet = if peak(left).max(peak(right)) <= SILENT {
            self.quiet + BLOCK as u64
        } else {
            0
        };
        if block_start + BLOCK as u64 > self.fade_from {
            let fade = (self.total - self.fade_from).max(1) as f32;
            for (i, (l, r)) in left.iter_mut().zip(right.iter_mut()).enumerate() {
                let t = block_start + i as u64;
                let gain = (self.total.saturating_sub(t) as f32 / fade).min(1.0);
                *l *= gain;
                *r *= gain;
            }
        }
    }
}

/// Where the SoundFont voice was asked for, and how [`find`] chose the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// Named with `--soundfont FILE`.
    Named(PathBuf),
    /// Named by `$NANOTUNE_SOUNDFONT`.
    FromVariable(PathBuf),
    /// The first SoundFont in one of the usual folders.
    Searched { path: PathBuf, folder: PathBuf },
}

impl Found {
    pub fn path(&self) -> &Path {
        match self {
            Found::Named(path) | Found::FromVariable(path) => path,
            Found::Searched { path, .. } => path,
        }
    }
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Named(path) => write!(f, "{}", path.display()),
            Found::FromVariable(path) => write!(f, "{}, from ${ENV_VAR}", path.display()),
            Found::Searched { path, folder } => write!(
                f,
                "{}, the first SoundFont in {}",
                path.display(),
                folder.display()
            ),
        }
    }
}

/// Where [`find`] looks: the variable's value and the folders, in order.
#[derive(Clone, Debug, Default)]
pub struct SearchPlaces {
    /// `$NANOTUNE_SOUNDFONT`: a file, or a folder to look in.
    pub variable: Option<OsString>,
    pub folders: Vec<PathBuf>,
}

impl SearchPlaces {
    /// This process's: `$NANOTUNE_SOUNDFONT`, then `/usr/share/sounds/sf2/` (Debian's),
    /// `/usr/share/soundfonts/`, and the user data folder (`$XDG_DATA_HOME/nanotune/soundfonts`
    /// or `~/.local/share/nanotune/soundfonts`).
    pub fn from_env() -> SearchPlaces {
        let mut folders = vec![
            PathBuf::from("/usr/share/sounds/sf2"),
            PathBuf::from("/usr/share/soundfonts"),
        ];
        let data_home = std::env::var_os("XDG_DATA_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share")));
        if let Some(data) = data_home {
            folders.push(data.join("nanotune/soundfonts"));
        }
        SearchPlaces {
            variable: std::env::var_os(ENV_VAR).filter(|v| !v.is_empty()),
            folders,
        }
    }
}

/// Which SoundFont to play, if any. `flag` is `--soundfont`: absent (None), given without a file
/// (Some(None)) or with one. A named file wins; otherwise a set `$NANOTUNE_SOUNDFONT` or a bare
/// `--soundfont` asks for the SoundFont voice, and the variable, then the folders are searched.
/// Ok(None): not asked for (the built-in voice plays). Err: asked for, and none found.
pub fn find(flag: Option<Option<&Path>>, places: &SearchPlaces) -> Result<Option<Found>> {
    if let Some(Some(path)) = flag {
        return Ok(Some(Found::Named(path.to_path_buf())));
    }
    if let Some(variable) = &places.variable {
        let path = PathBuf::from(variable);
        if !path.is_dir() {
            return Ok(Some(Found::FromVariable(path)));
        }
        if let Some(found) = first_soundfont(&path) {
            return Ok(Some(Found::FromVariable(found)));
        }
        bail!(
            "${ENV_VAR} names {}, a folder without an .sf2 file",
            path.display()
        );
    }
    if flag.is_none() {
        return Ok(None);
    }
    for folder in &places.folders {
        if let Some(path) = first_soundfont(folder) {
            return Ok(Some(Found::Searched {
                path,
                folder: folder.clone(),
            }));
        }
    }
    let looked: Vec<String> = places
        .folders
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    bail!(
        "no SoundFont found (looked in {}): name one with --soundfont FILE.sf2 or ${ENV_VAR}, or \
         install one (Debian: apt install fluid-soundfont-gm)",
        looked.join(", ")
    )
}

/// The SoundFont a folder offers: `default-GM.sf2` (Debian's choice of General MIDI font),
/// else the first `.sf2` by name.
fn first_soundfont(folder: &Path) -> Option<PathBuf> {
    let default = folder.join("default-GM.sf2");
    if default.is_file() {
        return Some(default);
    }
    let mut fonts: Vec<PathBuf> = std::fs::read_dir(folder)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("sf2")) && p.is_file())
        .collect();
    fonts.sort();
    fonts.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_quietly_becomes_its_first_line() {
        assert_eq!(quietly(|| 3), Ok(3));
        let message: Result<(), String> = quietly(|| panic!("index 9 out of range\nmore"));
        assert_eq!(message, Err("index 9 out of range".to_string()));
        // Nested: the outer guard stays quiet after the inner one ends.
        let nested = quietly(|| {
            let _ = quietly(|| panic!("inner"));
            panic!("outer {}", 1)
        });
        assert_eq!(nested, Err::<(), _>("outer 1".to_string()));
    }

    #[test]
    fn chunk_sizes_are_checked_against_the_file() {
        let mut font = b"RIFF\0\0\0\0sfbkLIST\x10\0\0\0INFOifil\x04\0\0\0\x02\0\x01\0".to_vec();
        let riff = (font.len() - 8) as u32;
        font[4..8].copy_from_slice(&riff.to_le_bytes());
        assert_eq!(check_chunks(&font), Ok(()));
        // The sub-chunk claims one byte more than its list holds.
        let mut long = font.clone();
        long[28] = 5;
        assert!(check_chunks(&long)
            .unwrap_err()
            .contains("'ifil' chunk in the 'INFO' list"));
        assert!(check_chunks(&font[..font.len() - 1])
            .unwrap_err()
            .starts_with("truncated"));
    }
}
