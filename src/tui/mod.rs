//! The terminal screen, in the Elm architecture: [`app`] holds the state and `update`, [`view`]
//! draws it, [`roll`] is the piano-roll widget, [`runtime`] carries out the effects (model,
//! sound, files), [`run`] is the terminal loop between them, and [`saved`] keeps the settings and
//! the last piece between runs.

pub mod app;
pub mod roll;
pub mod run;
pub mod runtime;
pub mod saved;
pub mod view;
