//! The terminal screen, in the Elm architecture: [`app`] holds the state and `update`, [`view`]
//! draws it, [`roll`] is the piano-roll widget, [`run`] the terminal loop that carries out the
//! effects.

pub mod app;
pub mod roll;
pub mod run;
pub mod saved;
pub mod view;
