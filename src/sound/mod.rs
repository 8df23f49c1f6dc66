//! Sound: notes rendered to audio samples, and playback on the sound card.

pub mod audio;
pub mod piece;
pub mod playback;
pub mod synth;
