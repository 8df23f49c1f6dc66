//! Sound: notes rendered to audio samples by a voice (the built-in one, or a SoundFont), and
//! playback on the sound card.

pub mod audio;
pub mod soundfont;
pub mod synth;
pub mod voice;
