//! nanotune: learn piano music from MIDI at the word level and generate new music.
//!
//! One piece of music flows through the modules in this order:
//! MIDI file ([`midi`]) -> grid notes ([`notes`]) -> words ([`words`]) -> token ids
//! ([`words::Vocab`]) -> prepared dataset ([`dataset`]), with [`augment`] for training;
//! token ids -> [`model`] (trained by [`train`], kept in a [`checkpoint`]) -> next-word logits.

pub mod analysis;
pub mod audio;
pub mod augment;
pub mod checkpoint;
pub mod cli;
pub mod corpus;
pub mod dataset;
pub mod device;
pub mod fsutil;
pub mod midi;
pub mod model;
pub mod notes;
pub mod plot;
pub mod sample;
pub mod synth;
pub mod train;
pub mod tui;
pub mod words;
