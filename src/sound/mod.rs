//! Sound: notes in seconds ([`timed`]) rendered to audio samples by a voice (the built-in
//! [`piano`] or a [`soundfont`]) through a [`renderer`], into a WAV file ([`wav`]), the sound card
//! ([`audio`]), a listener over SSH or a MIDI port ([`listen`]).

pub mod audio;
pub mod format;
pub mod listen;
pub mod output;
pub mod piano;
pub mod piece;
pub mod playback;
pub mod renderer;
pub mod soundfont;
pub mod timed;
pub mod voice;
pub mod wav;
