//! Sound over SSH: `nanotune listen` on the machine with the speakers plays what nanotune on a
//! (mute) GPU server sends it.
//!
//! # The flow
//! 1. On the laptop, `nanotune listen` binds a Unix socket (default
//!    [`default_socket_path`], `/tmp/nanotune-$USER.sock`) and, with `--port`, TCP on 127.0.0.1
//!    ([`Listener::bind`]), then serves ([`Listener::serve`]): it plays through the synth (or a
//!    MIDI port, [`midi_out`]; or, without a sound card, only keeps the clock) and, with
//!    `--save-dir`, saves every piece as a MIDI file ([`save`]).
//! 2. `ssh -R /tmp/nanotune-$USER.sock:/tmp/nanotune-$USER.sock gpu-box` makes the same path on
//!    the server a socket that OpenSSH forwards back to the laptop's.
//! 3. On the server, [`locate_listener`] finds it (`--listener`, `$NANOTUNE_LISTENER`, then the
//!    default path if a listener answers there) and gives a [`Client`], which
//!    [`crate::sound::output::Output`] holds beside the sound card and silence.
//! 4. The client sends [`protocol::Request`]s: a piece (notes, tempo map, title: a few
//!    kilobytes, not audio) and controls (stop, pause, volume, seek). The listener answers
//!    with a hello, a confirmation per piece and its clock ([`protocol::Status`]) several times a
//!    second while playing, once a second otherwise; the client's playhead follows that clock.
//!
//! # Security rules
//! - The Unix socket is created with mode 0600 (bound in a private folder, then moved into
//!   place), so only its owner can connect; TCP binds 127.0.0.1 only. On the server, sshd creates
//!   the forwarded socket with mode 0600 too, and the client refuses a socket that belongs to
//!   another user (on a shared server someone else could put one at the default path).
//! - Every message is bounded ([`protocol::MAX_MESSAGE_BYTES`], [`protocol::MAX_NOTES`]) and
//!   checked as it is decoded; a bad one (random bytes, another version, a huge length, a
//!   hang-up or a stall mid-message) costs its sender the connection and a log line, never the
//!   listener, which goes on serving. One client is served at a time; a second is told it is
//!   busy and dropped.
//! - The listener writes only inside `--save-dir`: a title becomes a file name of letters,
//!   digits, spaces, `-` and `_` ([`save::file_stem`]), never a path.

pub mod address;
pub mod client;
pub mod keys;
pub mod midi_out;
pub mod protocol;
pub mod save;
pub mod server;

pub use address::{default_socket_path, Address, LISTENER_ENV};
pub use client::{locate_listener, locate_listener_at, Client, Received};
pub use server::{Listener, Log, Serving};
