//! The terminal screen, in the Elm architecture: [`app`] holds the state and `update`, [`view`]
//! draws it, [`roll`] is the piano-roll widget.

pub mod app;
pub mod roll;
pub mod view;
