//! The terminal screen, in the Elm architecture: [`state`] holds the [`state::App`] and the
//! messages and effects that pass between it and the [`runtime`] (model, sound, files); [`app`]'s
//! `update` changes it, with the parts below it: [`act`] (the steps they share: start a
//! generation, play), [`menu`], [`takes`], [`answer`] (phrases from the laptop) and [`stream`]
//! (playing a piece while it is made); no module imports one that imports it back. [`keys`] maps
//! keys to commands and [`mouse`] pointer events to commands, which `update` carries out;
//! [`controls`] are the gauges, [`view`] draws where [`layout`] puts each part, [`roll`] is the
//! piano-roll widget, [`run`] is the terminal loop, and [`saved`] keeps the settings and the last
//! piece between runs ([`remember`] says when).

pub mod act;
pub mod answer;
pub mod app;
pub mod controls;
pub mod keys;
pub mod layout;
pub mod menu;
pub mod mouse;
pub mod remember;
pub mod roll;
pub mod run;
pub mod runtime;
pub mod saved;
pub mod state;
pub mod stream;
pub mod takes;
pub mod view;
