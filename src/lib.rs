//! nanotune: learn piano music from MIDI at the word level and generate new music.
//!
//! The folders follow one piece of music through the program:
//! - [`music`]: the format. MIDI file ([`music::midi`]) -> grid notes ([`music::notes`]) -> words
//!   ([`music::words`]) -> token ids ([`music::words::Vocab`]); [`music::augment`] transposes and
//!   stretches for training, [`music::analysis`] measures pieces.
//! - [`learn`]: the model. A corpus ([`learn::corpus`]) becomes a prepared dataset
//!   ([`learn::dataset`]); [`learn::train`] fits the GPT of [`learn::model`] on it, on the
//!   [`learn::device`] chosen, and keeps it in a [`learn::checkpoint`].
//! - [`sample`]: token ids -> model -> next-word logits -> new words, under a grammar that keeps
//!   them valid.
//! - [`sound`]: notes -> audio samples ([`sound::synth`]) -> the sound card ([`sound::audio`]),
//!   or a piece ([`sound::piece`]) sent to a listener over SSH ([`sound::listen`]); the screen and
//!   `play` hold one [`sound::output::Output`].
//! - [`tui`] (the screen) and [`cli`] (the commands) put these together; [`plot`] draws SVGs and
//!   [`fsutil`] writes files atomically.

pub mod cli;
pub mod fsutil;
pub mod learn;
pub mod music;
pub mod plot;
pub mod recover;
pub mod sample;
pub mod sound;
pub mod tui;
