//! Sound: notes rendered to audio samples, and playback on the sound card, a listener over SSH
//! or a MIDI port.

pub mod audio;
pub mod listen;
pub mod output;
pub mod piece;
pub mod playback;
pub mod synth;
