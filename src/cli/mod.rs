//! The command line: one subcommand per job, each in its own file.

mod bench;
mod codec;
mod eval;
mod play;
mod generate;
mod prepare;
mod render;
mod train;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// nanotune: a terminal music generator. A small GPT learns piano music from MIDI files at the
/// word level; generate new pieces, continue songs, hear them and see them as a piano roll.
#[derive(Parser, Debug)]
#[command(name = "nanotune", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    Encode(codec::EncodeArgs),
    Decode(codec::DecodeArgs),
    Prepare(prepare::PrepareArgs),
    Render(render::RenderArgs),
    Play(play::PlayArgs),
    Train(Box<train::TrainArgs>),
    Eval(eval::EvalArgs),
    Generate(generate::GenerateArgs),
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Encode(args) => codec::encode(args),
        Command::Decode(args) => codec::decode(args),
        Command::Prepare(args) => prepare::run(args),
        Command::Render(args) => render::run(args),
        Command::Play(args) => play::run(args),
        Command::Train(args) => train::run(*args),
        Command::Eval(args) => eval::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Bench(cmd) => bench::run(cmd),
    }
}
