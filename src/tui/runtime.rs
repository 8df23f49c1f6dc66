//! What the screen does outside itself: the model, the sound output, the dataset to continue
//! from and the generation in flight, in one [`Runtime`]. It carries out the [`Effect`]s of
//! `update` and reports back in [`Message`]s; no terminal is touched here, so it can be driven
//! by tests as the event loop drives it.

use super::state::{Effect, Environment, Message, PromptSource};
use crate::learn::checkpoint::{locate, Songs};
use crate::learn::dataset::{Dataset, SplitData};
use crate::learn::device::{Compute, DeviceChoice};
use crate::music::midi::write_midi;
use crate::music::notes::{canonical_words, from_words, STEPS_PER_QUARTER};
use crate::music::scale::Scale;
use crate::music::words::Titled;
use crate::music::words::Word;
use crate::sample::backend::{load_for, BoxedModel, Weights};
use crate::sample::infill::{self, Bars};
use crate::sample::{self, prompt, Running, SampleOptions};
use crate::sound::audio;
use crate::sound::format::Format;
use crate::sound::output::Output;
use crate::sound::piece::Piece;
use crate::sound::soundfont::{self, SearchPlaces, SoundFont};
use crate::sound::timed;
use crate::sound::voice::Voice;
use crate::sound::wav::WavEncoding;
use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What `nanotune` with no subcommand was given.
#[derive(Clone, Debug)]
pub struct Options {
    pub checkpoint: Option<PathBuf>,
    pub data: Option<PathBuf>,
    /// Words of a piece used as the Continue prompt, cut back to a whole note (0 = the whole
    /// piece, as in [`prompt::head`]).
    pub prompt_words: usize,
    pub device: DeviceChoice,
    /// Where a prepared dataset is looked for when `data` is not given.
    pub prepared: PathBuf,
    /// `--listener PATH|HOST:PORT`; else `$NANOTUNE_LISTENER`, then the default socket path
    /// where a listener answers, then the sound card.
    pub listener: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            checkpoint: None,
            data: None,
            prompt_words: prompt::DEFAULT_PROMPT_WORDS,
            device: DeviceChoice::default(),
            prepared: PathBuf::from(crate::learn::checkpoint::PREPARED_DIR),
            listener: None,
        }
    }
}

/// What a generation in flight ends with: each take's whole piece, in the order the screen
/// lists them, and how it ended.
struct Made {
    words: Vec<Vec<Word>>,
    cancelled: bool,
    elapsed: Duration,
}

impl Made {
    fn of_takes(takes: Vec<sample::Generation>) -> Made {
        Made {
            // The takes stop together; the run took as long as its longest take.
            cancelled: takes.iter().any(|g| g.ended == sample::Ended::Cancelled),
            elapsed: takes.iter().map(|g| g.elapsed).max().unwrap_or_default(),
            words: takes.into_iter().map(|g| g.words).collect(),
        }
    }
}

/// A generation in flight and when it started.
struct InFlight {
    running: Running<BoxedModel, (usize, Word), Made>,
    started: Instant,
}

/// The screen's side effects. The model lives here between generations and on the generation's
/// thread during one; one model makes 1 to 8 takes (one take is exactly [`sample::generate`]).
pub struct Runtime {
    model: Option<BoxedModel>,
    /// Where sound goes (silent: playing saves a WAV instead).
    sound: Output,
    /// The validation split "Continue song" draws from.
    validation: Option<SplitData>,
    options: Options,
    in_flight: Option<InFlight>,
    /// The last number used in a file name (`nanotune-N.mid`).
    saved: usize,
    /// The voice that plays and renders WAVs.
    voice: Voice,
    /// A listen was asked for and the listener has not answered yet.
    awaiting_keys: bool,
    /// The title of the piece playing while it is made.
    growing_title: String,
}

/// Why "Answer what I play" cannot start without a listener.
const NO_LISTENER: &str = "Answer what I play needs the listener on the laptop with a keyboard: \
`nanotune listen --midi-in` there, and this screen started over `ssh -R` (see the README)";

impl Runtime {
    /// Finds the model, the dataset and the sound card (printing nothing: the screen is not open
    /// yet), and says what is missing and why. An explicit `--device` that cannot be had is an
    /// error; everything else leaves the screen usable with less.
    pub fn open(options: Options) -> Result<(Runtime, Environment)> {
        // Silences libasound's complaints before anything opens the sound card.
        let audio_status = audio::probe();
        let (output, listener_note) = Output::open(options.listener.as_deref());
        let audio_error = match &output {
            Output::Silent(_) => Some(audio_status.to_string()),
            _ => None,
        };
        let sound_about = output.describe();
        let compute = Compute::for_generation(options.device)?;
        let located = locate(options.checkpoint.as_deref()).map_err(|e| format!("{e:#}"));
        let (model, model_error) = match located.clone().and_then(|d| load_model(&d, &compute)) {
            Ok(m) => (Some(m), None),
            Err(e) => (None, Some(e)),
        };
        // Without a model folder, the openings beside it cannot be found: only --data or
        // data/prepared.
        let songs = Songs::find_with(
            options.data.as_deref(),
            &options.prepared,
            located.as_deref().unwrap_or(Path::new("")),
        );
        let (validation, dataset_error, songs) = match load_validation(&songs) {
            Ok((v, about)) => (Some(v), None, Some(about)),
            Err(e) => (None, Some(e), None),
        };
        let env = Environment {
            model_error,
            dataset_error,
            songs,
            audio_error,
            sound: Some(match listener_note {
                Some(note) => note,
                None => sound_about,
            }),
            device: compute.name(),
            fill_method: model.as_ref().map_or("", |m| infill::method(m.vocab())),
        };
        Ok((Runtime::new(model, output, validation, options), env))
    }

    /// A runtime over what was found (see [`Runtime::open`]).
    pub fn new(
        model: Option<BoxedModel>,
        sound: Output,
        validation: Option<SplitData>,
        options: Options,
    ) -> Runtime {
        Runtime {
            model,
            sound,
            validation,
            options,
            in_flight: None,
            saved: 0,
            voice: Voice::Builtin,
            awaiting_keys: false,
            growing_title: String::new(),
        }
    }

    /// The listener sound goes to, if it goes to one.
    pub fn listener(&mut self) -> Option<&mut crate::sound::listen::Client> {
        self.sound.listener()
    }

    pub fn set_volume(&mut self, volume: f32) {
        if let Some(p) = self.sound.playback() {
            p.set_volume(volume);
        }
    }

    /// What happened since the last call: the new words of the generation in flight, its time,
    /// its end; and, while the screen shows a piece `playing`, where playback is.
    pub fn poll(&mut self, playing: bool) -> Vec<Message> {
        let mut messages = Vec::new();
        if let Some(flight) = &self.in_flight {
            messages.extend(flight.running.words.try_iter().map(word_of_take));
            messages.push(Message::Tick(flight.started.elapsed()));
            if flight.running.is_finished() {
                messages.extend(self.finish());
            }
        }
        if let Some(change) = self.sound.check() {
            messages.push(Message::Toast(change));
        }
        messages.extend(self.heard());
        if let (Some(p), true) = (self.sound.playback_ref(), playing) {
            let at = p.is_playing().then(|| p.position_seconds());
            messages.push(Message::PlayPosition(at));
        }
        messages
    }

    /// Takes back the model from the finished generation and reports how it ended.
    fn finish(&mut self) -> Vec<Message> {
        let Some(flight) = self.in_flight.take() else {
            return Vec::new();
        };
        // Words sent before the thread ended are still queued: take them first.
        let mut messages: Vec<Message> =
            flight.running.words.try_iter().map(word_of_take).collect();
        let (model, result) = flight.running.join();
        self.model = Some(model);
        messages.push(match result {
            Ok(made) => Message::Finished {
                cancelled: made.cancelled,
                elapsed: made.elapsed,
                error: None,
                words: Some(made.words),
            },
            Err(e) => Message::Finished {
                cancelled: false,
                elapsed: flight.started.elapsed(),
                error: Some(format!("{e:#}")),
                words: None,
            },
        });
        messages
    }

    /// Carries out one effect; what it leads to comes back as messages for `update`.
    pub fn carry_out(&mut self, effect: Effect) -> Vec<Message> {
        match effect {
            Effect::Generate {
                prompt,
                options,
                takes,
                scale_from_prompt,
            } => self.generate(prompt, options, takes, scale_from_prompt),
            Effect::Regenerate {
                words,
                bars,
                options,
                takes,
            } => self.regenerate(words, bars, options, takes),
            Effect::Cancel => {
                if let Some(f) = &self.in_flight {
                    f.running.stop();
                }
                Vec::new()
            }
            Effect::Play {
                title,
                words,
                bpm,
                volume,
                from,
                open,
            } => self.play(title, &words, bpm, volume, from, open),
            Effect::Grow { words, bpm, whole } => self.grow(&words, bpm, whole),
            Effect::Stop => {
                if let Some(p) = self.sound.playback() {
                    p.stop();
                }
                Vec::new()
            }
            Effect::SetVolume(v) => {
                self.set_volume(v);
                Vec::new()
            }
            Effect::SaveMidi { words, bpm } => {
                let path = self.next_name("mid");
                let done = write_midi(&from_words(&words).notes, bpm)
                    .and_then(|bytes| crate::fsutil::write_atomic(&path, &bytes));
                vec![toast_saved(done, &path, "saved")]
            }
            Effect::SaveWav { words, bpm } => {
                let path = self.next_name("wav");
                let done = save_wav(&self.voice, &path, &words, bpm);
                vec![toast_saved(done, &path, "saved")]
            }
            Effect::SetVoice(choice) => self.set_voice(choice),
            Effect::Listen(bpm) => self.listen(bpm),
            // The app has stopped its loop already; there is nothing left to do outside it.
            Effect::Quit => Vec::new(),
        }
    }

    fn generate(
        &mut self,
        source: PromptSource,
        mut options: SampleOptions,
        takes: usize,
        scale_from_prompt: bool,
    ) -> Vec<Message> {
        let Some(model) = self.model.take() else {
            return vec![failed("no model is loaded")];
        };
        match self.prompt(source, options.seed) {
            Ok(p) => {
                let mut started = vec![Message::Started(p.clone())];
                if scale_from_prompt {
                    let (scale, about) = prompt_scale(&p);
                    options.scale = scale;
                    started.push(Message::Toast(about));
                }
                let job = move |model: &mut BoxedModel, stop: &_, send: &mut dyn FnMut(_)| {
                    sample::generate_takes(model, &p, &options, takes, stop, &mut |k, w| {
                        send((k, w))
                    })
                    .map(Made::of_takes)
                };
                self.in_flight = Some(InFlight {
                    running: sample::spawn_job(model, job),
                    started: Instant::now(),
                });
                started
            }
            Err(e) => {
                self.model = Some(model);
                vec![failed(&format!("{e:#}"))]
            }
        }
    }

    /// Regenerates `bars` of the piece `words` on the model's thread: the fills come back as the
    /// takes, best first; nothing streams meanwhile (a fill's words belong inside the piece).
    fn regenerate(
        &mut self,
        words: Vec<Word>,
        bars: Bars,
        options: SampleOptions,
        takes: usize,
    ) -> Vec<Message> {
        let Some(model) = self.model.take() else {
            return vec![failed("no model is loaded")];
        };
        let started = Instant::now();
        let piece = Titled {
            words: words.clone(),
            title: None,
        };
        let job = move |model: &mut BoxedModel,
                        stop: &std::sync::atomic::AtomicBool,
                        _: &mut dyn FnMut((usize, Word))| {
            let fills = infill::regenerate(model, &words, bars, &options, takes, stop)?;
            Ok(Made {
                words: fills.into_iter().map(|f| f.words).collect(),
                cancelled: stop.load(std::sync::atomic::Ordering::Relaxed),
                elapsed: started.elapsed(),
            })
        };
        self.in_flight = Some(InFlight {
            running: sample::spawn_job(model, job),
            started,
        });
        vec![Message::Started(piece)]
    }

    /// The prompt `source` names; a random song is drawn by `seed`, so a seed repeats it.
    fn prompt(&self, source: PromptSource, seed: u64) -> Result<Titled> {
        let words = self.options.prompt_words;
        match source {
            PromptSource::New => Ok(prompt::new_piece()),
            PromptSource::RandomSong => {
                let split = self
                    .validation
                    .as_ref()
                    .context("no prepared dataset to continue a song from")?;
                prompt::continue_song(split, None, words, &mut StdRng::seed_from_u64(seed))
            }
            PromptSource::Given(p) => Ok(p),
            PromptSource::File(path) => prompt::continue_file(&path, words),
        }
    }

    /// Plays the piece of `words` from `from` seconds; `open`: it is still being made, and
    /// [`Effect::Grow`] brings the rest. With no sound, a whole piece is saved as a WAV instead;
    /// one being made is not, until space asks for it.
    fn play(
        &mut self,
        title: String,
        words: &[Word],
        bpm: f64,
        volume: f32,
        from: f64,
        open: bool,
    ) -> Vec<Message> {
        let Some(p) = self.sound.playback() else {
            if open {
                return vec![Message::PlayPosition(None)];
            }
            let path = self.next_name("wav");
            let done = save_wav(&self.voice, &path, words, bpm);
            return vec![
                Message::PlayPosition(None),
                toast_saved(done, &path, "no audio device: saved"),
            ];
        };
        let (piece, settled) = piece_of_words(&title, words, bpm);
        if open {
            self.growing_title = title;
        }
        p.set_volume(volume);
        let started = match open {
            true => p.play_open(&piece, settled),
            false => p.play(&piece),
        };
        match started {
            Ok(()) => {
                if from > 0.0 {
                    p.seek(from);
                }
                Vec::new()
            }
            Err(e) => vec![
                Message::PlayPosition(None),
                Message::Toast(format!("cannot play: {e:#}")),
            ],
        }
    }

    /// The piece playing while it is made, grown to `words` (all of it, where `whole`).
    fn grow(&mut self, words: &[Word], bpm: f64, whole: bool) -> Vec<Message> {
        let Some(p) = self.sound.playback() else {
            return Vec::new();
        };
        let (piece, settled) = piece_of_words(&self.growing_title, words, bpm);
        match p.grow(&piece, (!whole).then_some(settled)) {
            Ok(()) => Vec::new(),
            Err(e) => {
                p.stop();
                vec![
                    Message::PlayPosition(None),
                    Message::Toast(format!("cannot play on: {e:#}")),
                ]
            }
        }
    }

    /// Asks the listener to hear its keyboard at `bpm` (`None`: stop); without a listener,
    /// says how to have one.
    fn listen(&mut self, bpm: Option<f64>) -> Vec<Message> {
        self.awaiting_keys = bpm.is_some();
        match self.sound.listener() {
            Some(client) => {
                client.listen(bpm);
                Vec::new()
            }
            None if bpm.is_some() => {
                self.awaiting_keys = false;
                vec![Message::Listening(Err(NO_LISTENER.into()))]
            }
            None => Vec::new(),
        }
    }

    /// What the listener's keyboard brought since the last look: its answer to a listen, and
    /// the phrases played, each as a prompt.
    fn heard(&mut self) -> Vec<Message> {
        let awaiting = self.awaiting_keys;
        let Some(client) = self.sound.listener() else {
            return Vec::new();
        };
        let mut messages = Vec::new();
        if awaiting {
            if let Some(keys) = client.listening() {
                self.awaiting_keys = false;
                messages.push(Message::Listening(keys));
            }
        }
        while let Some(heard) = client.next_phrase() {
            let title = Some(format!("phrase {}", heard.number));
            let phrase = prompt::extend(&canonical_words(&heard.notes), title);
            messages.push(Message::Phrase(phrase));
        }
        messages
    }

    /// Loads the voice `choice` names (see [`Effect::SetVoice`]) for the next play and WAV. A
    /// SoundFont that cannot be found or read leaves the built-in voice, and says why.
    fn set_voice(&mut self, choice: Option<Option<PathBuf>>) -> Vec<Message> {
        let loaded = match &choice {
            None => Ok(Voice::Builtin),
            Some(file) => soundfont::find(Some(file.as_deref()), &SearchPlaces::from_env())
                .and_then(|found| found.context("no SoundFont was asked for"))
                .and_then(|found| SoundFont::load(found.path()))
                .map(Voice::SoundFont),
        };
        let set = loaded.and_then(|voice| {
            if let Some(p) = self.sound.playback() {
                p.set_voice(&voice)?;
            }
            Ok(voice)
        });
        match set {
            Ok(voice) => {
                let path = match &voice {
                    Voice::SoundFont(font) => Some(font.path().to_path_buf()),
                    Voice::Builtin => None,
                };
                let about = format!("voice: {} (next play)", voice.name());
                self.voice = voice;
                vec![Message::Voice(path), Message::Toast(about)]
            }
            Err(e) => {
                self.voice = Voice::Builtin;
                if let Some(p) = self.sound.playback() {
                    let _ = p.set_voice(&Voice::Builtin);
                }
                vec![
                    Message::Voice(None),
                    Message::Toast(format!("{e:#}: built-in voice")),
                ]
            }
        }
    }

    /// `nanotune-1.mid`, `nanotune-2.wav`, ...: the first name not taken in the current folder.
    fn next_name(&mut self, ext: &str) -> PathBuf {
        loop {
            self.saved += 1;
            let p = PathBuf::from(format!("nanotune-{}.{ext}", self.saved));
            if !p.exists() {
                return p;
            }
        }
    }
}

impl Drop for Runtime {
    /// Stops a generation still running, so its thread ends with the screen.
    fn drop(&mut self) {
        if let Some(flight) = self.in_flight.take() {
            flight.running.stop();
            let _ = flight.running.join();
        }
    }
}

/// Loads the model in `dir` (found by [`locate`]), or says why it cannot.
fn load_model(dir: &Path, compute: &Compute) -> std::result::Result<BoxedModel, String> {
    load_for(dir, compute, Weights::default())
        .map(|(m, _)| m)
        .map_err(|e| format!("could not load the model in {}: {e:#}", dir.display()))
}

/// The validation pieces Continue song draws from, and a few words on where they came from.
fn load_validation(songs: &Songs) -> std::result::Result<(SplitData, String), String> {
    let dir = songs.dir();
    match Dataset::load(dir) {
        Ok(ds) if !ds.val.pieces.is_empty() => {
            let n = ds.val.pieces.len();
            let about = match songs {
                Songs::Openings(_) => format!("songs: openings of {n} pieces beside the model"),
                Songs::Given(d) | Songs::Prepared(d) => format!("songs: {n} in {}", d.display()),
            };
            Ok((ds.val, about))
        }
        Ok(_) => Err(format!("the dataset in {} has no validation pieces", dir.display())),
        Err(_) => Err(format!(
            "Continue song needs a prepared dataset in {} (nanotune prepare SOURCE -o DIR, then --data DIR)",
            dir.display(),
        )),
    }
}

/// The key the prompt's notes fit best, for the Scale control's "match prompt", and what to
/// tell the user.
fn prompt_scale(p: &Titled) -> (Option<Scale>, String) {
    let pitches = from_words(&p.words).notes.into_iter().map(|n| n.pitch);
    match Scale::best_for(pitches) {
        Some((s, share)) => (
            Some(s),
            format!(
                "scale lock {s}: {:.0}% of the prompt's notes",
                share * 100.0
            ),
        ),
        None => (
            None,
            "no notes in the prompt to match: no scale lock".into(),
        ),
    }
}

/// The piece of `words` at `bpm`, and, for one still being made, the quarter note before which
/// it is whole (the cursor: no note still to come starts earlier).
fn piece_of_words(title: &str, words: &[Word], bpm: f64) -> (Piece, f64) {
    let decoded = from_words(words);
    let settled = decoded.cursor as f64 / STEPS_PER_QUARTER as f64;
    (Piece::from_grid(title, &decoded.notes, bpm), settled)
}

fn save_wav(voice: &Voice, path: &Path, words: &[Word], bpm: f64) -> Result<()> {
    let notes = timed::from_grid(&from_words(words).notes, bpm);
    voice.render_wav_file(path, &notes, Format::STEREO_44K, WavEncoding::Pcm16)
}

fn word_of_take((take, word): (usize, Word)) -> Message {
    Message::Word { take, word }
}

fn failed(why: &str) -> Message {
    Message::Finished {
        cancelled: false,
        elapsed: Duration::ZERO,
        error: Some(why.to_string()),
        words: None,
    }
}

fn toast_saved(done: Result<()>, path: &Path, what: &str) -> Message {
    Message::Toast(match done {
        Ok(()) => format!("{what} {}", path.display()),
        Err(e) => format!("could not save {}: {e:#}", path.display()),
    })
}
