//! The command line: one subcommand per job, each in its own file.

mod bench;
mod codec;
mod compare;
mod describe;
mod eval;
mod export;
mod generate;
mod listen;
mod play;
mod prepare;
mod render;
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
    /// The model: a checkpoint folder. Default: $NANOTUNE_CHECKPOINT, ./checkpoints, checkpoints/
    /// beside the executable, then ~/.local/share/nanotune/checkpoints.
    #[arg(long)]
    pub checkpoint: Option<std::path::PathBuf>,
    /// The prepared dataset whose validation pieces "Continue song" draws from.
    #[arg(long, default_value = "data/prepared")]
    pub data: std::path::PathBuf,
    /// Words of a song used as the prompt of "Continue song" and "Continue file".
    #[arg(long, default_value_t = crate::sample::prompt::DEFAULT_PROMPT_WORDS)]
    pub prompt_words: usize,
    /// Where the model computes: auto, cpu, cuda or cuda:N (auto = CUDA where this binary has
    /// it and a GPU answers).
    #[arg(long, default_value = "auto")]
    pub device: crate::learn::device::DeviceChoice,
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
}

impl SamplingArgs {
    /// These settings with `seed`, checked.
    pub fn options(&self, seed: u64, stop_at_end: bool) -> Result<SampleOptions> {
        let opts = SampleOptions {
            words: self.tokens,
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed,
            stop_at_end,
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
    Export(export::ExportArgs),
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
        return crate::tui::run::run(crate::tui::run::Options {
            checkpoint: cli.screen.checkpoint,
            data: Some(cli.screen.data),
            prompt_words: cli.screen.prompt_words,
            device: cli.screen.device,
        });
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
        Command::Export(args) => export::run(args),
        Command::Bench(cmd) => bench::run(cmd),
    }
}
