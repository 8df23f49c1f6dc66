//! `nanotune listen`: on the machine with the speakers, play what nanotune on a server sends.

use crate::music::midi::read_midi;
use crate::music::notes::from_words;
use crate::music::words::Word;
use crate::sound::audio::Player;
use crate::sound::listen::keys::{choose_input, input_ports, KeySettings, KeySource};
use crate::sound::listen::midi_out::{output_ports, MidiOutPlayback};
use crate::sound::listen::{default_socket_path, Address, Client, Listener, Log};
use crate::sound::piece::Piece;
use crate::sound::playback::{CardPlayback, Playback, SilentPlayback};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Listen for pieces sent by nanotune on a server (over `ssh -R`) and play them here.
///
/// On the laptop: `nanotune listen`, then `ssh -o ExitOnForwardFailure=yes -R
/// /tmp/nanotune-$USER.sock:/tmp/nanotune-$USER.sock gpu-box` (the first `$USER`: your login on
/// gpu-box); nanotune there finds the listener by itself. The socket has mode 0600: only you can
/// connect. Without a sound card it still receives, saves and keeps time. Runs until interrupted
/// (Ctrl-C); a socket left by a listener that was killed is replaced at the next start.
#[derive(Args, Debug)]
pub struct ListenArgs {
    /// The Unix socket to listen on. Default: /tmp/nanotune-$USER.sock.
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Also listen on TCP at this port, on 127.0.0.1 only (for `ssh -R PORT:127.0.0.1:PORT`).
    #[arg(long)]
    pub port: Option<u16>,
    /// Save every piece received in this folder, as a MIDI file named after its title.
    #[arg(long, value_name = "DIR")]
    pub save_dir: Option<PathBuf>,
    /// Send the notes to a MIDI port instead of the synth: the first port, or PORT: a name, an
    /// index in --list-midi-ports, or part of a name.
    #[arg(long, value_name = "PORT", num_args = 0..=1, default_missing_value = "")]
    pub midi_out: Option<String>,
    /// List the MIDI output and input ports and exit.
    #[arg(long)]
    pub list_midi_ports: bool,
    /// Hear a MIDI keyboard for "Answer what I play" on the screen: the first input port, or
    /// PORT (a name, an index in --list-midi-ports, or part of a name). Each phrase played is
    /// sent to the screen (and saved with --save-dir); its answer plays here.
    #[arg(long, value_name = "PORT", num_args = 0..=1, default_missing_value = "", conflicts_with = "midi_in_file")]
    pub midi_in: Option<String>,
    /// Play this MIDI file in real time as if it came from a keyboard (to try "Answer what I
    /// play" without one), at the screen's tempo, from when the screen starts listening.
    #[arg(long, value_name = "FILE")]
    pub midi_in_file: Option<PathBuf>,
    /// Beats of silence (every key and the pedal up) that end a phrase.
    #[arg(long, value_name = "BEATS", default_value_t = 2.0)]
    pub phrase_gap: f64,
    /// A phrase also ends when it fills this many bars.
    #[arg(long, value_name = "N")]
    pub phrase_bars: Option<u32>,
    /// A bar of clicks here before the keys are heard; phrases are counted from its end, so
    /// they keep their place in the bar.
    #[arg(long)]
    pub count_in: bool,
    /// Receive (and save) without playing, even where there is a sound card.
    #[arg(long, conflicts_with = "midi_out")]
    pub no_sound: bool,
    /// Play through a General MIDI SoundFont instead of the built-in voice (as `render
    /// --soundfont`: without a file, $NANOTUNE_SOUNDFONT or the first found in the usual places).
    #[arg(long, value_name = "FILE.sf2", num_args = 0..=1, conflicts_with_all = ["midi_out", "no_sound"])]
    pub soundfont: Option<Option<PathBuf>>,
}

pub fn run(args: ListenArgs) -> Result<()> {
    if args.list_midi_ports {
        for (kind, ports) in [("output", output_ports()?), ("input", input_ports()?)] {
            println!("MIDI {kind} ports:");
            if ports.is_empty() {
                println!("  none");
            }
            for (i, name) in ports.iter().enumerate() {
                println!("  {i}: {name}");
            }
        }
        return Ok(());
    }
    let keys = key_settings(&args)?;
    if let Some(dir) = &args.save_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let save_dir = args
        .save_dir
        .as_ref()
        .map(|d| d.canonicalize().unwrap_or_else(|_| d.clone()));
    let playback = open_playback(&args)?;
    let socket = args.socket.clone().unwrap_or_else(default_socket_path);
    let mut listener = Listener::bind(Some(&socket), args.port)?;
    let hears = keys.as_ref().map(describe_keys);
    if let Some(keys) = keys {
        listener = listener.with_keys(keys);
    }
    println!("listening on {} (mode 0600)", socket.display());
    if let Some(addr) = listener.tcp_address() {
        println!("listening on tcp {addr}");
    }
    println!("{}", playback.describe());
    if let Some(dir) = &save_dir {
        println!("saving pieces in {}", dir.display());
    }
    if let Some(hears) = hears {
        println!("phrases from {hears}");
    }
    println!(
        "now, from here: ssh -o ExitOnForwardFailure=yes -R /tmp/nanotune-LOGIN.sock:{} SERVER \
         (LOGIN: yours on SERVER), and nanotune there finds this listener",
        socket.display()
    );
    // A closed stdout must not end the listener (println! would panic).
    let log: Log = Arc::new(|line: &str| {
        let _ = writeln!(std::io::stdout(), "{line}");
    });
    listener.serve(playback, save_dir, log).wait();
    Ok(())
}

/// The keys phrases are caught from, as the flags say (`None` without `--midi-in` or
/// `--midi-in-file`), checked before the listener starts.
fn key_settings(args: &ListenArgs) -> Result<Option<KeySettings>> {
    let source = match (&args.midi_in, &args.midi_in_file) {
        (Some(port), _) => {
            // Checked now, so a missing keyboard is said at the start.
            let wanted = Some(port.clone()).filter(|p| !p.is_empty());
            choose_input(wanted.as_deref())?;
            KeySource::Port(wanted)
        }
        (None, Some(file)) => {
            // Read now, so a bad file is said at the start, not when the screen asks.
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            read_midi(&bytes).with_context(|| file.display().to_string())?;
            KeySource::File(file.clone())
        }
        (None, None) => return Ok(None),
    };
    if !(args.phrase_gap.is_finite() && (0.25..=16.0).contains(&args.phrase_gap)) {
        bail!("--phrase-gap must be 0.25 to 16 beats");
    }
    if args.phrase_bars == Some(0) {
        bail!("--phrase-bars must be at least 1");
    }
    Ok(Some(KeySettings {
        source,
        gap_beats: args.phrase_gap,
        max_bars: args.phrase_bars,
        count_in: args.count_in,
    }))
}

fn describe_keys(keys: &KeySettings) -> String {
    let source = match &keys.source {
        KeySource::Port(None) => "the first MIDI input port".to_string(),
        KeySource::Port(Some(port)) => format!("MIDI input {port}"),
        KeySource::File(file) => format!("{} played as a keyboard", file.display()),
    };
    let bars = keys
        .max_bars
        .map_or(String::new(), |n| format!(" or {n} bars"));
    let count_in = if keys.count_in {
        ", after a bar's count-in"
    } else {
        ""
    };
    format!(
        "{source}, ended by {} beats of silence{bars}{count_in}, when the screen asks",
        keys.gap_beats
    )
}

/// Where the listener's sound goes. The synth voice is chosen here, the one place (a SoundFont
/// would be handed to the player on the `Player::new` line).
fn open_playback(args: &ListenArgs) -> Result<Box<dyn Playback>> {
    if let Some(port) = &args.midi_out {
        return Ok(Box::new(MidiOutPlayback::open(Some(port))?));
    }
    if args.no_sound {
        return Ok(Box::new(SilentPlayback::new("--no-sound")));
    }
    let voice = super::render::choose_voice(args.soundfont.as_ref().map(|f| f.as_deref()))?;
    Ok(match Player::new() {
        Ok(player) => {
            let mut card = CardPlayback::new(player);
            card.set_voice(&voice)?;
            Box::new(card)
        }
        Err(no_audio) => Box::new(SilentPlayback::new(&no_audio.0)),
    })
}

/// `nanotune bench listen`: see its help in `bench.rs`.
pub fn bench(
    words: usize,
    reps: usize,
    listener: Option<&str>,
    save_dir: Option<PathBuf>,
) -> Result<()> {
    if reps == 0 {
        bail!("--reps must be at least 1");
    }
    let socket = std::env::temp_dir().join(format!("nanotune-bench-{}.sock", std::process::id()));
    let (address, _serving) = match listener {
        Some(text) => (Address::parse(text)?, None),
        None => {
            if let Some(dir) = &save_dir {
                std::fs::create_dir_all(dir)?;
            }
            let serving = Listener::bind(Some(&socket), None)?.serve(
                Box::new(SilentPlayback::new("bench")),
                save_dir,
                Arc::new(|_: &str| {}),
            );
            (Address::Unix(socket.clone()), Some(serving))
        }
    };
    let mut client = Client::connect(&address)?;
    let words = dense_piece(words);
    let bytes =
        crate::sound::listen::protocol::encode(&crate::sound::listen::protocol::Request::Play {
            id: 0,
            piece: piece_of(&words),
        })
        .len();
    let mut times = Vec::with_capacity(reps);
    for rep in 0..reps + 3 {
        // Space: the words on screen become notes and go to the listener, which confirms.
        let started = Instant::now();
        let id = client.send_piece(&piece_of(&words))?;
        let received = client.wait_received(id, Duration::from_secs(10))?;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        // The first few warm the caches and the listener's threads.
        if rep >= 3 {
            times.push(ms);
        }
        if rep == 0 {
            println!(
                "piece: {} words, {} notes, {:.1} s, {bytes} bytes on the wire",
                words.len(),
                received.notes,
                received.seconds
            );
        }
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| super::bench::quantile(&times, q);
    println!(
        "listen over {address}: median {:.2} ms, p95 {:.2} ms, max {:.2} ms from space to the listener having the piece ({} sends)",
        at(0.5),
        at(0.95),
        times[times.len() - 1],
        times.len()
    );
    Ok(())
}

fn piece_of(words: &[Word]) -> Piece {
    Piece::from_grid("bench", &from_words(words).notes, 120.0)
}

/// `bench tui`'s dense piece, ended.
fn dense_piece(words: usize) -> Vec<Word> {
    let mut piece = super::bench::dense_piece(words);
    piece.push(Word::End);
    piece
}
