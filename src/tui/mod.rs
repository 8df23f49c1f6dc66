//! The terminal screen, in the Elm architecture: [`app`] holds the state and `update` (its
//! [`controls`], [`keys`] for what each key does, and [`mouse`] for clicks), [`view`] draws it
//! where [`layout`] puts each part, [`roll`] is the piano-roll widget, [`runtime`] carries out
//! the effects (model, sound, files), [`run`] is the terminal loop between them, and [`saved`]
//! keeps the settings and the last piece between runs ([`remember`] says when); [`takes`],
//! [`answer`] and [`stream`] are the parts of `update` for takes, answering phrases and playing
//! a piece while it is made.

pub mod answer;
pub mod app;
pub mod controls;
pub mod keys;
pub mod layout;
pub mod mouse;
pub mod remember;
pub mod roll;
pub mod run;
pub mod runtime;
pub mod saved;
pub mod stream;
pub mod takes;
pub mod view;
