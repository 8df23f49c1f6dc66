//! The music format: MIDI files, notes on the sixteenth-note grid, words and token ids (a piece
//! file becomes canonical words in [`read`]), and the transformations and measurements made on
//! them. Nothing here knows about models or sound.

pub mod analysis;
pub mod augment;
pub mod fill;
pub mod midi;
pub mod mutate;
pub mod notes;
pub mod phrase;
pub mod range;
pub mod read;
pub mod scale;
pub mod words;
