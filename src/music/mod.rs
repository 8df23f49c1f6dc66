//! The music format: MIDI files, notes on the sixteenth-note grid, words and token ids, and the
//! transformations and measurements made on them. Nothing here knows about models or sound.

pub mod analysis;
pub mod augment;
pub mod midi;
pub mod notes;
pub mod scale;
pub mod words;
