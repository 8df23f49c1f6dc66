//! `nanotune play`: hear a MIDI file, or save it as WAV where there is no sound card.

use super::render::{load_notes, SoundArgs};
use crate::sound::audio::{play_or_save, Played};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Play a MIDI file (or a word file) through the piano synth or a SoundFont.
///
/// Where there is no sound card (a server reached over SSH), the rendering is saved as a WAV file
/// instead (`--wav`, default: the input's name with .wav, in the current folder) and the command
/// still succeeds.
#[derive(Args, Debug)]
pub struct PlayArgs {
    /// The .mid/.midi file (or a word file) to play.
    pub input: PathBuf,
    /// Where to save the WAV file when there is no sound card.
    #[arg(long)]
    pub wav: Option<PathBuf>,
    #[command(flatten)]
    pub sound: SoundArgs,
}

pub fn run(args: PlayArgs) -> Result<()> {
    let notes = load_notes(&args.input, args.sound.bpm)?;
    let voice = args.sound.voice()?;
    let wav = args.wav.unwrap_or_else(|| {
        let stem = args.input.file_stem().unwrap_or_default();
        PathBuf::from(stem).with_extension("wav")
    });
    match play_or_save(
        &notes,
        &voice,
        &wav,
        args.sound.format()?,
        args.sound.encoding(),
    )? {
        Played::Played { device } => println!("played {} on {device}", args.input.display()),
        Played::Saved { reason } => {
            println!("no audio device: saved {} ({reason})", wav.display())
        }
    }
    Ok(())
}
