//! Sound: notes rendered to audio samples by a voice (the built-in one, or a SoundFont), and
//! playback on the sound card, a listener over SSH or a MIDI port.

pub mod audio;
pub mod listen;
pub mod output;
pub mod piece;
pub mod playback;
pub mod soundfont;
pub mod synth;
pub mod voice;
