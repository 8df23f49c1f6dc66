//! The terminal screen, in the Elm architecture: [`app`] holds the state and `update`, [`view`]
//! draws it, [`roll`] is the piano-roll widget, [`runtime`] carries out the effects (model,
//! sound, files) and [`run`] is the terminal loop between them.

pub mod app;
pub mod roll;
pub mod run;
pub mod runtime;
pub mod view;
