//! `nanotune render`: a MIDI (or word) file to a WAV file through the synth.

use crate::music::midi::read_midi;
use crate::music::notes::from_words;
use crate::music::read::{is_midi, piece_from_text, ReadReport};
use crate::sound::format::Format;
use crate::sound::soundfont::{self, Found, SearchPlaces, SoundFont};
use crate::sound::timed::{self, check_length, music_seconds, TimedNote};
use crate::sound::voice::Voice;
use crate::sound::wav::WavEncoding;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

/// Render a MIDI file (or a word file) to a WAV file with the piano synth or a SoundFont.
///
/// A MIDI file plays at its own tempo map, velocities and sustain pedal unless `--bpm` is given;
/// a word file (`START n60 d4 ...`) plays at `--bpm` (default 120) at the default velocity.
#[derive(Args, Debug)]
pub struct RenderArgs {
    /// The .mid/.midi file (or a word file) to render.
    pub input: PathBuf,
    /// The WAV file to write.
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub sound: SoundArgs,
}

/// Options shared by `render` and `play`.
#[derive(Args, Debug, Clone)]
pub struct SoundArgs {
    /// Tempo in quarter notes per minute (overrides a MIDI file's own tempo map).
    #[arg(long)]
    pub bpm: Option<f64>,
    /// Sample rate of the WAV file: 44100 or 48000.
    #[arg(long, default_value_t = 44_100, value_parser = parse_rate)]
    pub rate: u32,
    /// Write one channel instead of two.
    #[arg(long)]
    pub mono: bool,
    /// Write 32-bit float samples instead of 16-bit PCM.
    #[arg(long)]
    pub float: bool,
    /// Play through a General MIDI SoundFont (.sf2, program 0) instead of the built-in voice.
    /// Without a file: $NANOTUNE_SOUNDFONT, else the first in /usr/share/sounds/sf2/,
    /// /usr/share/soundfonts/ or ~/.local/share/nanotune/soundfonts/. A set $NANOTUNE_SOUNDFONT
    /// asks for it too. Put it after the input file (or write --soundfont=FILE).
    #[arg(long, value_name = "FILE.sf2", num_args = 0..=1)]
    pub soundfont: Option<Option<PathBuf>>,
}

impl SoundArgs {
    pub fn format(&self) -> Result<Format> {
        Format::new(self.rate, if self.mono { 1 } else { 2 })
    }

    /// The voice asked for (see [`choose_voice`]).
    pub fn voice(&self) -> Result<Voice> {
        choose_voice(self.soundfont.as_ref().map(|f| f.as_deref()))
    }

    pub fn encoding(&self) -> WavEncoding {
        if self.float {
            WavEncoding::Float32
        } else {
            WavEncoding::Pcm16
        }
    }
}

fn parse_rate(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(rate @ (44_100 | 48_000)) => Ok(rate),
        _ => Err("the sample rate is 44100 or 48000".into()),
    }
}

/// The voice a `--soundfont` flag (absent, bare, or with a file) and `$NANOTUNE_SOUNDFONT` ask
/// for: a SoundFont, loaded, and named on stderr in one line where the command line did not name
/// it; else the built-in voice.
pub fn choose_voice(flag: Option<Option<&Path>>) -> Result<Voice> {
    let Some(found) = soundfont::find(flag, &SearchPlaces::from_env())? else {
        return Ok(Voice::Builtin);
    };
    let font = SoundFont::load(found.path())?;
    if !matches!(found, Found::Named(_)) {
        eprintln!("voice: {} ({found})", font.file_name());
    }
    Ok(Voice::SoundFont(font))
}

/// The notes of a MIDI file (its tempo map unless `bpm` is given) or of a word file (at `bpm`,
/// default 120), in seconds.
pub fn load_notes(path: &Path, bpm: Option<f64>) -> Result<Vec<TimedNote>> {
    if let Some(bpm) = bpm {
        if !(bpm.is_finite() && bpm > 0.0) {
            bail!("--bpm must be a positive number, not {bpm}");
        }
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if is_midi(path, &bytes) {
        let piece = read_midi(&bytes).with_context(|| format!("reading {}", path.display()))?;
        Ok(timed::from_midi(&piece, bpm))
    } else {
        let text = String::from_utf8_lossy(&bytes);
        let words = piece_from_text(&text, &mut ReadReport::default())
            .with_context(|| format!("reading {}", path.display()))?;
        // Canonical words already: decoding them gives canonical notes.
        let notes = from_words(&words).notes;
        Ok(timed::from_grid(&notes, bpm.unwrap_or(120.0)))
    }
}

pub fn run(args: RenderArgs) -> Result<()> {
    let format = args.sound.format()?;
    let notes = load_notes(&args.input, args.sound.bpm)?;
    check_length(&notes).with_context(|| args.input.display().to_string())?;
    let voice = args.sound.voice()?;
    voice.render_wav_file(&args.output, &notes, format, args.sound.encoding())?;
    println!(
        "rendered {} notes, {:.1} s of music, to {} ({} voice)",
        notes.len(),
        music_seconds(&notes),
        args.output.display(),
        voice.name()
    );
    Ok(())
}
