//! The command line: one subcommand per job, each in its own file.

mod bench;
mod codec;
mod compare;
mod describe;
mod eval;
mod export;
mod generate;
mod keys;
mod listen;
mod play;
mod prepare;
mod render;
mod score;
mod train;

use crate::sample::SampleOptions;
use anyhow::Result;
use clap::{Parser, Subcommand};

/// nanotune: a terminal music generator. A small GPT learns piano music from MIDI files at the
/// word level; generate new pieces, continue songs, hear them and see them as a piano roll.
#[derive(Parser, Debug)]
#[command(name = "nanotune", version, about, long_about = None)]
pub struct Cli {
    /// Without a command, nanotune opens its terminal screen (see `Screen options` below).
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub screen: ScreenArgs,
}

/// Options of the terminal screen that opens when no command is given.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Screen options")]
pub struct ScreenArgs {
    #[arg(long, help = crate::learn::checkpoint::CHECKPOINT_HELP)]
    pub checkpoint: Option<std::path::PathBuf>,
    /// The prepared dataset whose validation pieces "Continue song" draws from [default: the
    /// last one given, else data/prepared where it exists, else the openings shipped beside the
    /// model].
    #[arg(long)]
    pub data: Option<std::path::PathBuf>,
    /// Words of the piece to continue from in "Continue song" and "Continue file", cut back to a
    /// whole note (0 = the whole piece).
    #[arg(long, default_value_t = crate::sample::prompt::DEFAULT_PROMPT_WORDS)]
    pub prompt_words: usize,
    /// Where the model computes: auto, cpu, cuda or cuda:N (auto = the CPU decoder, which writes
    /// one word at a time faster than a GPU does; cuda for the GPU's batched takes).
    #[arg(long, default_value = "auto")]
    pub device: crate::learn::device::DeviceChoice,
    /// The settings file to read and write [default: settings.toml in the user's config
    /// folder, e.g. ~/.config/nanotune]; the last piece is kept beside it, and keys.toml (see
    /// `nanotune keys`) is read from beside it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Start from the default settings, ignoring the settings file and the last piece (the file
    /// is replaced at the next change).
    #[arg(long)]
    pub reset: bool,
    /// Start with a General MIDI SoundFont voice (this file, or without one the first found, as
    /// `render --soundfont` finds it; a set $NANOTUNE_SOUNDFONT asks for it too). `v` switches
    /// between it and the built-in voice; the choice is kept in the settings.
    #[arg(long, value_name = "FILE.sf2", num_args = 0..=1)]
    pub soundfont: Option<Option<std::path::PathBuf>>,
    /// Send sound to this `nanotune listen` (a socket path or HOST:PORT). Default:
    /// $NANOTUNE_LISTENER, then /tmp/nanotune-$USER.sock where a listener answers, then the
    /// sound card.
    #[arg(long, value_name = "PATH|HOST:PORT")]
    pub listener: Option<String>,
}

/// The sampling settings of `generate` and `compare`, the screen's gauges on the command line.
#[derive(clap::Args, Debug)]
pub struct SamplingArgs {
    /// New words to generate (the piece then ends at the next whole note).
    #[arg(long, default_value_t = SampleOptions::default().words)]
    pub tokens: usize,
    /// Sampling temperature (0 = always the likeliest word).
    #[arg(long, default_value_t = SampleOptions::default().temperature)]
    pub temperature: f32,
    /// Sample among the k likeliest words only (0 = all).
    #[arg(long, default_value_t = SampleOptions::default().top_k)]
    pub top_k: usize,
    /// Sample among the likeliest words holding this much probability (1.0 = off).
    #[arg(long, default_value_t = SampleOptions::default().top_p)]
    pub top_p: f32,
    /// Scale lock: every new note in this key (C, F#, Bb, Dm, F#m, "A minor": major or natural
    /// minor), the prompt left as it is; off by default.
    #[arg(long, default_value = "off", value_parser = crate::music::scale::parse_lock)]
    // Fully qualified, so clap parses the whole Option (off = None) instead of treating the
    // flag as optional.
    pub scale: ::std::option::Option<crate::music::scale::Scale>,
    /// Length in bars instead of --tokens: the new part fills N bars of 4/4 after the bar the
    /// prompt ends in, and the piece ends at that bar line. With `generate --infill`: the bars
    /// to regenerate, A-B (counted from 1).
    #[arg(long, value_name = "N|A-B")]
    pub bars: Option<crate::sample::infill::Bars>,
    /// Every new note inside this range of notes, both ends included (C3-C6; middle C is C4),
    /// the prompt left as it is.
    #[arg(long, value_name = "LOW-HIGH")]
    pub range: Option<crate::music::range::PitchRange>,
    /// Never more than K new and old notes sounding at once (1: a single line).
    #[arg(long, value_name = "K")]
    pub polyphony: Option<usize>,
    /// New music near D notes per beat (a steer: the model still chooses; the corpus averages
    /// about 3).
    #[arg(long, value_name = "D")]
    pub density: Option<f32>,
}

impl SamplingArgs {
    /// These settings with `seed`, checked; `--bars` is a length.
    pub fn options(&self, seed: u64, stop_at_end: bool) -> Result<SampleOptions> {
        let bars = match self.bars {
            Some(b) if b.first != b.last => {
                anyhow::bail!("--bars {}-{} names bars to regenerate: give --infill FILE too, or one number for a length", b.first, b.last)
            }
            b => b.map(|b| b.first),
        };
        self.options_with(seed, stop_at_end, bars)
    }

    /// These settings with `seed` and a length of `bars`, checked.
    pub fn options_with(
        &self,
        seed: u64,
        stop_at_end: bool,
        bars: Option<u32>,
    ) -> Result<SampleOptions> {
        let opts = SampleOptions {
            words: self.tokens,
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed,
            stop_at_end,
            scale: self.scale,
            range: self.range,
            polyphony: self.polyphony,
            density: self.density,
            bars,
            fill: None,
        };
        opts.validate()?;
        Ok(opts)
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    Encode(codec::EncodeArgs),
    Decode(codec::DecodeArgs),
    Prepare(prepare::PrepareArgs),
    Render(render::RenderArgs),
    Play(play::PlayArgs),
    Listen(listen::ListenArgs),
    Train(Box<train::TrainArgs>),
    Eval(eval::EvalArgs),
    Generate(generate::GenerateArgs),
    Compare(compare::CompareArgs),
    Describe(describe::DescribeArgs),
    Score(score::ScoreArgs),
    Export(export::ExportArgs),
    Keys(keys::KeysArgs),
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

impl Cli {
    /// Whether the command writes to sockets (the screen, `play` and `listen` talk to a
    /// listener; `bench listen` too), where a closed peer must be an error it handles, not a
    /// SIGPIPE that kills it.
    pub fn writes_to_sockets(&self) -> bool {
        matches!(
            self.command,
            None | Some(Command::Play(_) | Command::Listen(_))
                | Some(Command::Bench(bench::BenchCommand::Listen { .. }))
        )
    }
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let Some(command) = cli.command else {
        let persist = crate::tui::run::Persist {
            config: cli.screen.config,
            reset: cli.screen.reset,
            soundfont: cli.screen.soundfont,
        };
        let options = crate::tui::runtime::Options {
            checkpoint: cli.screen.checkpoint,
            data: cli.screen.data,
            prompt_words: cli.screen.prompt_words,
            device: cli.screen.device,
            listener: cli.screen.listener,
            ..crate::tui::runtime::Options::default()
        };
        return crate::tui::run::run(options, persist);
    };
    match command {
        Command::Encode(args) => codec::encode(args),
        Command::Decode(args) => codec::decode(args),
        Command::Prepare(args) => prepare::run(args),
        Command::Render(args) => render::run(args),
        Command::Play(args) => play::run(args),
        Command::Listen(args) => listen::run(args),
        Command::Train(args) => train::run(*args),
        Command::Eval(args) => eval::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Describe(args) => describe::run(args),
        Command::Score(args) => score::run(args),
        Command::Export(args) => export::run(args),
        Command::Keys(args) => keys::run(args),
        Command::Bench(cmd) => bench::run(cmd),
    }
}
