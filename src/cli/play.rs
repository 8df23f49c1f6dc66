//! `nanotune play`: hear a MIDI file, on a listener over SSH, on the sound card, or saved as WAV
//! where there is neither.

use super::render::SoundArgs;
use crate::music::notes::from_words;
use crate::music::read::{is_midi, piece_from_text, ReadReport};
use crate::sound::listen::locate_listener;
use crate::sound::output::Output;
use crate::sound::piece::Piece;
use crate::sound::timed::check_length;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long `play --listener` waits for the listener to confirm it has the piece.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

/// Play a MIDI file (or a word file) through the piano synth or a SoundFont.
///
/// Where a listener answers (`nanotune listen` on the laptop, reached through `ssh -R`), the
/// piece goes there and the command returns once the listener confirms it has it. Otherwise it
/// plays on the sound card; where there is none (a server reached over SSH), the rendering is
/// saved as a WAV file instead (`--wav`, default: the input's name with .wav, in the current
/// folder) and the command still succeeds.
#[derive(Args, Debug)]
pub struct PlayArgs {
    /// The .mid/.midi file (or a word file) to play.
    pub input: PathBuf,
    /// Where to save the WAV file when there is no sound card.
    #[arg(long)]
    pub wav: Option<PathBuf>,
    /// Send the piece to this listener: a socket path or HOST:PORT. Default: $NANOTUNE_LISTENER,
    /// then /tmp/nanotune-$USER.sock if a listener answers there.
    #[arg(long, value_name = "PATH|HOST:PORT")]
    pub listener: Option<String>,
    #[command(flatten)]
    pub sound: SoundArgs,
}

pub fn run(args: PlayArgs) -> Result<()> {
    let piece = load_piece(&args.input, args.sound.bpm)?;
    check_length(&piece.timed_notes()).with_context(|| args.input.display().to_string())?;
    let format = args.sound.format()?;
    let voice = args.sound.voice()?;
    // A listener named on the command line must answer; otherwise fall back, saying why.
    let mut output = match &args.listener {
        Some(flag) => match locate_listener(Some(flag), None)? {
            Some(client) => Output::Listener(client),
            None => bail!("no listener at {flag}"),
        },
        None => {
            let (output, note) = Output::open(None);
            if let Some(note) = note {
                eprintln!("{note}");
            }
            output
        }
    };
    match &mut output {
        Output::Listener(client) => {
            if args.sound.soundfont.is_some() {
                eprintln!("the listener plays with its own voice (nanotune listen --soundfont)");
            }
            let id = client.send_piece(&piece)?;
            let received = client.wait_received(id, CONFIRM_TIMEOUT)?;
            let saved = match (&received.saved, &received.save_error) {
                (Some(path), _) => format!("; saved there as {path}"),
                (None, Some(why)) => format!("; not saved there: {why}"),
                (None, None) => String::new(),
            };
            println!(
                "sent {} to the listener at {} ({}): {} notes, {:.1} s{saved}",
                args.input.display(),
                client.address(),
                client.plays_on(),
                received.notes,
                received.seconds
            );
        }
        Output::Card(_) | Output::Other(_) => {
            let playback = output
                .playback()
                .context("a sound card without its playback")?;
            playback.set_voice(&voice)?;
            playback.play(&piece)?;
            while playback.is_playing() {
                std::thread::sleep(Duration::from_millis(20));
            }
            // Let the device drain its last buffer.
            std::thread::sleep(Duration::from_millis(200));
            println!(
                "played {}, {:.1} s of music, on {}",
                args.input.display(),
                piece.length_seconds(),
                playback.describe()
            );
        }
        Output::Silent(reason) => {
            let wav = args.wav.clone().unwrap_or_else(|| {
                let stem = args.input.file_stem().unwrap_or_default();
                PathBuf::from(stem).with_extension("wav")
            });
            voice.render_wav_file(&wav, &piece.timed_notes(), format, args.sound.encoding())?;
            println!(
                "no audio device: saved {}, {:.1} s of music ({reason})",
                wav.display(),
                piece.length_seconds()
            );
        }
    }
    Ok(())
}

/// The piece in a MIDI file (its tempo map unless `bpm` is given) or a word file (at `bpm`,
/// default 120), titled by the file's name.
pub fn load_piece(path: &Path, bpm: Option<f64>) -> Result<Piece> {
    if let Some(bpm) = bpm {
        if !(bpm.is_finite() && bpm > 0.0) {
            bail!("--bpm must be a positive number, not {bpm}");
        }
    }
    let title = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if is_midi(path, &bytes) {
        let piece = Piece::read_midi_file(&title, &bytes)
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(match bpm {
            Some(bpm) => piece.at_bpm(bpm),
            None => piece,
        })
    } else {
        let text = String::from_utf8_lossy(&bytes);
        let words = piece_from_text(&text, &mut ReadReport::default())
            .with_context(|| format!("reading {}", path.display()))?;
        let notes = from_words(&words).notes;
        Ok(Piece::from_grid(&title, &notes, bpm.unwrap_or(120.0)))
    }
}
