//! Keys are commands: everything a key can do on the screen is a [`Command`], and a [`Keymap`]
//! says which keys run which command. The defaults are the screen's keys; `keys.toml` beside
//! `settings.toml` rebinds any command (`play_stop = ["p"]`: a command listed there replaces its
//! default keys, the others keep theirs), and `nanotune keys` prints the defaults in that form.
//!
//! A file with an unknown command or key name, or two commands on one key, is reported one line
//! per problem and the commands concerned keep their default keys, so a typo never leaves the
//! screen without a way to play or quit. Ctrl+C always quits and the popups' own keys (typing a
//! path, Esc and q closing the help) are not commands: the app handles them before the keymap.

use super::saved::KEYS_FILE;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::fmt;
use std::path::Path;

/// Everything a key can do on the screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Run,
    SwitchFocus,
    Up,
    Down,
    /// The selected control down one step; with Shift (`shift+left`, `H`) a large step.
    Decrease,
    Increase,
    /// The selected control a large step down, even with the menu focused.
    DecreaseMore,
    IncreaseMore,
    LockSeed,
    PlayStop,
    /// Play each piece while it is made, or wait for space.
    PlayWhileMade,
    SaveMidi,
    SaveWav,
    SwitchVoice,
    Undo,
    /// Select a bar to regenerate, or one more.
    SelectBar,
    SelectFewer,
    Regenerate,
    MoreTakes,
    FewerTakes,
    /// Show take 1 to 8.
    Take(u8),
    ZoomIn,
    ZoomOut,
    ScrollBack,
    ScrollForward,
    Cancel,
    Help,
    Quit,
}

/// Every command: its name in `keys.toml`, its default keys and what it does, in the order
/// `nanotune keys` and the README list them.
#[rustfmt::skip] // One row a line reads as the table it is.
const COMMANDS: [(Command, &str, &[&str], &str); 35] = [
    (Command::Run, "run", &["enter"], "run the selected menu action"),
    (Command::SwitchFocus, "switch_focus", &["tab", "backtab"], "switch between the menu and the controls"),
    (Command::Up, "up", &["up", "k"], "select the menu item or control above"),
    (Command::Down, "down", &["down", "j"], "select the menu item or control below"),
    (Command::Decrease, "decrease", &["left", "h", "H"], "turn the selected control down (with Shift a large step)"),
    (Command::Increase, "increase", &["right", "l", "L"], "turn the selected control up (with Shift a large step)"),
    (Command::DecreaseMore, "decrease_more", &["["], "turn the selected control down a large step, from the menu too"),
    (Command::IncreaseMore, "increase_more", &["]"], "turn the selected control up a large step, from the menu too"),
    (Command::LockSeed, "lock_seed", &["x"], "lock or unlock the seed"),
    (Command::PlayStop, "play_stop", &["space"], "play or stop the piece (saves a WAV with no sound card)"),
    (Command::PlayWhileMade, "play_while_made", &["a"], "play each piece while it is made, or only when space is pressed (kept)"),
    (Command::SaveMidi, "save_midi", &["s"], "save the piece as a MIDI file"),
    (Command::SaveWav, "save_wav", &["w"], "save the piece as a WAV file"),
    (Command::SwitchVoice, "switch_voice", &["v"], "switch the voice, built-in or SoundFont (from the next play)"),
    (Command::Undo, "undo", &["u"], "undo the last extension or regeneration"),
    (Command::SelectBar, "select_bar", &["b"], "select the bar at the playhead (or the first on screen) to regenerate; again, the next one too"),
    (Command::SelectFewer, "select_fewer", &["B"], "select one bar fewer (none after the last)"),
    (Command::Regenerate, "regenerate", &["r"], "regenerate the selected bars in place, as many fills as Takes, best first"),
    (Command::MoreTakes, "more_takes", &["t"], "one take more from the next generation"),
    (Command::FewerTakes, "fewer_takes", &["T"], "one take fewer from the next generation"),
    (Command::Take(1), "take_1", &["1"], "show take 1"),
    (Command::Take(2), "take_2", &["2"], "show take 2"),
    (Command::Take(3), "take_3", &["3"], "show take 3"),
    (Command::Take(4), "take_4", &["4"], "show take 4"),
    (Command::Take(5), "take_5", &["5"], "show take 5"),
    (Command::Take(6), "take_6", &["6"], "show take 6"),
    (Command::Take(7), "take_7", &["7"], "show take 7"),
    (Command::Take(8), "take_8", &["8"], "show take 8"),
    (Command::ZoomIn, "zoom_in", &["+", "="], "zoom the piano roll in"),
    (Command::ZoomOut, "zoom_out", &["-"], "zoom the piano roll out"),
    (Command::ScrollBack, "scroll_back", &["<", ","], "scroll the piano roll back"),
    (Command::ScrollForward, "scroll_forward", &[">", "."], "scroll the piano roll forward"),
    (Command::Cancel, "cancel", &["esc"], "cancel the generation, or clear the status line's message"),
    (Command::Help, "help", &["?"], "show every key (Esc, q or this key closes it)"),
    (Command::Quit, "quit", &["q"], "quit (Ctrl+C always quits too)"),
];

impl Command {
    /// Every command, in [`COMMANDS`]' order.
    pub fn all() -> impl Iterator<Item = Command> {
        COMMANDS.iter().map(|row| row.0)
    }

    fn index(self) -> usize {
        COMMANDS
            .iter()
            .position(|row| row.0 == self)
            .expect("every command is in the table")
    }

    /// The command's name in `keys.toml` (`play_stop`).
    pub fn name(self) -> &'static str {
        COMMANDS[self.index()].1
    }

    /// What it does, in one line.
    pub fn description(self) -> &'static str {
        COMMANDS[self.index()].3
    }

    pub fn named(name: &str) -> Option<Command> {
        COMMANDS.iter().find(|row| row.1 == name).map(|row| row.0)
    }
}

/// The keys with a name of their own; any other key is its character (`q`, `?`, `[`).
const NAMED: [(&str, KeyCode); 16] = [
    ("space", KeyCode::Char(' ')),
    ("enter", KeyCode::Enter),
    ("esc", KeyCode::Esc),
    ("tab", KeyCode::Tab),
    ("backtab", KeyCode::BackTab),
    ("backspace", KeyCode::Backspace),
    ("up", KeyCode::Up),
    ("down", KeyCode::Down),
    ("left", KeyCode::Left),
    ("right", KeyCode::Right),
    ("home", KeyCode::Home),
    ("end", KeyCode::End),
    ("pageup", KeyCode::PageUp),
    ("pagedown", KeyCode::PageDown),
    ("insert", KeyCode::Insert),
    ("delete", KeyCode::Delete),
];

const MODIFIERS: [(&str, KeyModifiers); 3] = [
    ("ctrl", KeyModifiers::CONTROL),
    ("alt", KeyModifiers::ALT),
    ("shift", KeyModifiers::SHIFT),
];

/// One key as the keymap knows it, written `ctrl+x`, `shift+left`, `space`, `H`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    code: KeyCode,
    modifiers: KeyModifiers,
}

impl Key {
    /// Only Ctrl, Alt and Shift count. A character carries Shift in itself (`H`, `?`, which
    /// terminals may or may not report with Shift) and Shift+Tab arrives as BackTab, so Shift is
    /// dropped from both.
    fn new(code: KeyCode, modifiers: KeyModifiers) -> Key {
        let mut modifiers =
            modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        if matches!(code, KeyCode::Char(_) | KeyCode::BackTab) {
            modifiers.remove(KeyModifiers::SHIFT);
        }
        Key { code, modifiers }
    }

    /// A key from its name: modifiers joined by `+` then the key (`ctrl+x`, `alt++`); named keys
    /// and modifiers in any case, a character as it is typed. `shift+h` is `H` and `shift+tab`
    /// is `backtab`.
    pub fn parse(text: &str) -> Option<Key> {
        let (prefix, name) = match text.strip_suffix("++") {
            Some(prefix) => (prefix, "+"),
            None if text == "+" => ("", "+"),
            None => text.rsplit_once('+').unwrap_or(("", text)),
        };
        let mut modifiers = KeyModifiers::NONE;
        for part in prefix.split('+').filter(|_| !prefix.is_empty()) {
            let (_, m) = MODIFIERS
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(part))?;
            modifiers |= *m;
        }
        let shift = modifiers.contains(KeyModifiers::SHIFT);
        let mut chars = name.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) if shift && c.is_ascii_alphabetic() => {
                KeyCode::Char(c.to_ascii_uppercase())
            }
            (Some(c), None) if !shift => KeyCode::Char(c),
            _ if shift && name.eq_ignore_ascii_case("tab") => KeyCode::BackTab,
            _ => named(name)?,
        };
        Some(Key::new(code, modifiers))
    }
}

/// A named key (`enter`, `f5`), in any case.
fn named(name: &str) -> Option<KeyCode> {
    let lower = name.to_ascii_lowercase();
    if let Some(n) = lower.strip_prefix('f').and_then(|n| n.parse::<u8>().ok()) {
        return (1..=12).contains(&n).then_some(KeyCode::F(n));
    }
    NAMED
        .iter()
        .find(|(n, _)| *n == lower)
        .map(|(_, code)| *code)
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (name, m) in MODIFIERS {
            if self.modifiers.contains(m) {
                write!(f, "{name}+")?;
            }
        }
        match (self.code, NAMED.iter().find(|(_, code)| *code == self.code)) {
            (_, Some((name, _))) => f.write_str(name),
            (KeyCode::F(n), _) => write!(f, "f{n}"),
            (KeyCode::Char(c), _) => write!(f, "{c}"),
            (code, _) => write!(f, "{code:?}"),
        }
    }
}

/// Which keys run which command.
#[derive(Clone, Debug, PartialEq)]
pub struct Keymap {
    /// The keys of each command, in [`COMMANDS`]' order.
    keys: Vec<Vec<Key>>,
}

impl Keymap {
    pub fn defaults() -> Keymap {
        Keymap {
            keys: COMMANDS.iter().map(|row| default_keys(row.0)).collect(),
        }
    }

    /// The command of a key. A key with modifiers that is not bound itself acts as the key alone,
    /// as it always has: Shift+← is ← (which turns a control in large steps with Shift).
    pub fn lookup(&self, event: &KeyEvent) -> Option<Command> {
        self.command_of(Key::new(event.code, event.modifiers))
            .or_else(|| self.command_of(Key::new(event.code, KeyModifiers::NONE)))
    }

    fn command_of(&self, key: Key) -> Option<Command> {
        Command::all().find(|&c| self.keys_for(c).contains(&key))
    }

    pub fn keys_for(&self, command: Command) -> &[Key] {
        &self.keys[command.index()]
    }

    /// The keys of a command for people: `up k`, or `(none)` for a command unbound.
    pub fn shown(&self, command: Command) -> String {
        match self.keys_for(command) {
            [] => "(none)".to_string(),
            keys => keys
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// The keymap of a `keys.toml`, and one line per problem in it (see the module's notes).
    pub fn from_toml(text: &str) -> (Keymap, Vec<String>) {
        let mut map = Keymap::defaults();
        let table: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                let why = e.message().lines().next().unwrap_or("").trim().to_string();
                return (map, vec![format!("not read ({why}): default keys")]);
            }
        };
        let mut problems = Vec::new();
        let mut listed = Vec::new();
        for (name, value) in &table {
            let Some(command) = Command::named(name) else {
                problems.push(format!(
                    "unknown command {name}: ignored (nanotune keys lists them)"
                ));
                continue;
            };
            if let Some(keys) = keys_of(command, value, &mut problems) {
                map.keys[command.index()] = keys;
                listed.push(command);
            }
        }
        map.settle(listed, &mut problems);
        (map, problems)
    }

    /// `keys.toml` at `path`: the defaults where there is none, and the problems, each a line
    /// that names the file.
    pub fn load(path: &Path) -> (Keymap, Vec<String>) {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let (map, problems) = Keymap::from_toml(&text);
                let problems = problems
                    .into_iter()
                    .map(|p| format!("{KEYS_FILE}: {p}"))
                    .collect();
                (map, problems)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Keymap::defaults(), Vec::new()),
            Err(e) => (
                Keymap::defaults(),
                vec![format!("{} not read ({e}): default keys", path.display())],
            ),
        }
    }

    /// Two commands on one key: the ones the file set go back to their default keys, until no
    /// key has two. The defaults share no key, so every clash has a command the file set and
    /// each round has one fewer.
    fn settle(&mut self, mut listed: Vec<Command>, problems: &mut Vec<String>) {
        while let Some((key, on)) = self.clash(&listed) {
            let back: Vec<Command> = on.iter().copied().filter(|c| listed.contains(c)).collect();
            for &c in &back {
                self.keys[c.index()] = default_keys(c);
            }
            listed.retain(|c| !back.contains(c));
            let keep = match back.len() {
                1 => "keeps its default keys",
                _ => "keep their default keys",
            };
            problems.push(format!(
                "{key} is bound to {}: {} {keep}",
                names(&on),
                names(&back)
            ));
        }
    }

    /// A key bound to more than one command, one of them `listed`, and those commands.
    fn clash(&self, listed: &[Command]) -> Option<(Key, Vec<Command>)> {
        listed.iter().find_map(|&c| {
            self.keys_for(c).iter().find_map(|&key| {
                let on: Vec<Command> = Command::all()
                    .filter(|&other| self.keys_for(other).contains(&key))
                    .collect();
                (on.len() > 1).then_some((key, on))
            })
        })
    }

    /// The keymap as a `keys.toml`: a header saying how to use it, then one line per command
    /// with what it does.
    pub fn to_toml(&self) -> String {
        let lines: Vec<(String, Command)> = Command::all()
            .map(|c| {
                let keys: Vec<String> = self
                    .keys_for(c)
                    .iter()
                    .map(|k| toml::Value::String(k.to_string()).to_string())
                    .collect();
                (format!("{} = [{}]", c.name(), keys.join(", ")), c)
            })
            .collect();
        let width = lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        let mut out = String::from(TOML_HEADER);
        for (line, c) in lines {
            out += &format!("{line:width$}  # {}\n", c.description());
        }
        out
    }

    /// The keymap as the README's Markdown table: key, command, what it does.
    pub fn markdown(&self) -> String {
        let mut out = String::from("| keys | command | what it does |\n| --- | --- | --- |\n");
        for c in Command::all() {
            let keys = match self.keys_for(c) {
                [] => "(none)".to_string(),
                keys => keys
                    .iter()
                    .map(|k| format!("`{}`", k.to_string().replace('|', "\\|")))
                    .collect::<Vec<_>>()
                    .join(" "),
            };
            out += &format!("| {keys} | `{}` | {} |\n", c.name(), c.description());
        }
        out
    }
}

const TOML_HEADER: &str = "\
# nanotune's keys. Put the lines to change in keys.toml beside settings.toml
# (~/.config/nanotune/ on Linux, or beside the file given to --config): a command
# listed there replaces its default keys, the others keep theirs; [] unbinds it.
# Keys: a character (q, ?, [), space, enter, esc, tab, backtab, backspace, up, down,
# left, right, home, end, pageup, pagedown, insert, delete, f1 to f12; ctrl+, alt+
# or shift+ before one (ctrl+x, shift+left). Ctrl+C always quits.

";

fn default_keys(command: Command) -> Vec<Key> {
    COMMANDS[command.index()]
        .2
        .iter()
        .map(|name| Key::parse(name).expect("the default keys parse"))
        .collect()
}

/// The keys a `keys.toml` value gives `command`: a list of key names (or one name). `None`, with
/// a line for each problem, where any of it cannot be used: the command keeps its defaults.
fn keys_of(command: Command, value: &toml::Value, problems: &mut Vec<String>) -> Option<Vec<Key>> {
    let name = command.name();
    let texts: Vec<&str> = match value {
        toml::Value::String(s) => vec![s.as_str()],
        toml::Value::Array(items) if items.iter().all(toml::Value::is_str) => {
            items.iter().filter_map(toml::Value::as_str).collect()
        }
        _ => {
            problems.push(format!(
                "{name} needs a list of key names like [\"space\"]: it keeps its default keys"
            ));
            return None;
        }
    };
    let ctrl_c = Key::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    let mut keys: Vec<Key> = Vec::new();
    let mut usable = true;
    for text in texts {
        match Key::parse(text) {
            Some(key) if key == ctrl_c && command != Command::Quit => {
                problems.push(format!(
                    "ctrl+c always quits, it cannot run {name}: {name} keeps its default keys"
                ));
                usable = false;
            }
            Some(key) => {
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            None => {
                problems.push(format!(
                    "unknown key {text:?} for {name}: it keeps its default keys"
                ));
                usable = false;
            }
        }
    }
    usable.then_some(keys)
}

fn names(commands: &[Command]) -> String {
    commands
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(" and ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn key_names_read_and_write_back() {
        for (text, code, modifiers) in [
            ("space", KeyCode::Char(' '), KeyModifiers::NONE),
            ("q", KeyCode::Char('q'), KeyModifiers::NONE),
            ("?", KeyCode::Char('?'), KeyModifiers::NONE),
            ("[", KeyCode::Char('['), KeyModifiers::NONE),
            ("+", KeyCode::Char('+'), KeyModifiers::NONE),
            ("H", KeyCode::Char('H'), KeyModifiers::NONE),
            ("enter", KeyCode::Enter, KeyModifiers::NONE),
            ("backtab", KeyCode::BackTab, KeyModifiers::NONE),
            ("f5", KeyCode::F(5), KeyModifiers::NONE),
            ("shift+left", KeyCode::Left, KeyModifiers::SHIFT),
            ("ctrl+x", KeyCode::Char('x'), KeyModifiers::CONTROL),
            (
                "ctrl+alt+delete",
                KeyCode::Delete,
                KeyModifiers::CONTROL | KeyModifiers::ALT,
            ),
            ("alt++", KeyCode::Char('+'), KeyModifiers::ALT),
        ] {
            let key = Key::parse(text).unwrap_or_else(|| panic!("{text} parses"));
            assert_eq!(key, Key::new(code, modifiers), "{text}");
            assert_eq!(key.to_string(), text);
        }
        // Other spellings of the same keys.
        for (text, same) in [
            ("Enter", "enter"),
            ("CTRL+x", "ctrl+x"),
            ("shift+h", "H"),
            ("shift+H", "H"),
            ("shift+tab", "backtab"),
            (" ", "space"),
        ] {
            assert_eq!(Key::parse(text), Key::parse(same), "{text}");
        }
        for bad in ["spcae", "", "hyper+x", "f13", "shift+?", "ctrl+", "left+"] {
            assert_eq!(Key::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_defaults_are_todays_keys_and_share_none() {
        let map = Keymap::defaults();
        let on = |code, m| map.lookup(&event(code, m));
        assert_eq!(
            on(KeyCode::Char(' '), KeyModifiers::NONE),
            Some(Command::PlayStop)
        );
        assert_eq!(
            on(KeyCode::Char('?'), KeyModifiers::SHIFT),
            Some(Command::Help)
        );
        assert_eq!(
            on(KeyCode::BackTab, KeyModifiers::SHIFT),
            Some(Command::SwitchFocus)
        );
        assert_eq!(
            on(KeyCode::Char('H'), KeyModifiers::SHIFT),
            Some(Command::Decrease)
        );
        assert_eq!(
            on(KeyCode::Left, KeyModifiers::SHIFT),
            Some(Command::Decrease)
        );
        assert_eq!(
            on(KeyCode::Char('5'), KeyModifiers::NONE),
            Some(Command::Take(5))
        );
        assert_eq!(
            on(KeyCode::Char('T'), KeyModifiers::NONE),
            Some(Command::FewerTakes)
        );
        assert_eq!(on(KeyCode::Char('z'), KeyModifiers::NONE), None);
        let all: Vec<Key> = map.keys.iter().flatten().copied().collect();
        for (i, k) in all.iter().enumerate() {
            assert!(!all[i + 1..].contains(k), "{k} is bound twice");
        }
        assert_eq!(Command::all().count(), COMMANDS.len());
        for c in Command::all() {
            assert_eq!(Command::named(c.name()), Some(c));
        }
    }

    #[test]
    fn a_file_rebinds_what_it_lists_and_keeps_the_rest() {
        let (map, problems) =
            Keymap::from_toml("play_stop = [\"p\", \"ctrl+p\"]\nhelp = \"f1\"\nundo = []\n");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(map.shown(Command::PlayStop), "p ctrl+p");
        assert_eq!(map.shown(Command::Help), "f1");
        assert_eq!(map.shown(Command::Undo), "(none)");
        assert_eq!(map.shown(Command::Quit), "q");
        assert_eq!(
            map.lookup(&event(KeyCode::Char(' '), KeyModifiers::NONE)),
            None
        );
        // Two commands swapping keys is no clash.
        let (map, problems) = Keymap::from_toml("save_midi = [\"w\"]\nsave_wav = [\"s\"]");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(map.shown(Command::SaveMidi), "w");
    }

    #[test]
    fn unknown_names_and_clashes_are_one_line_each_and_keep_the_defaults() {
        let (map, problems) = Keymap::from_toml(
            "plya = [\"p\"]\nsave_midi = [\"spcae\", \"m\"]\nundo = [\"bogus\", \"nope\"]\n\
             play_stop = [\"s\"]\nzoom_in = 3\n",
        );
        assert_eq!(
            problems,
            [
                "unknown command plya: ignored (nanotune keys lists them)",
                "unknown key \"spcae\" for save_midi: it keeps its default keys",
                "unknown key \"bogus\" for undo: it keeps its default keys",
                "unknown key \"nope\" for undo: it keeps its default keys",
                "zoom_in needs a list of key names like [\"space\"]: it keeps its default keys",
                "s is bound to play_stop and save_midi: play_stop keeps its default keys",
            ]
        );
        assert_eq!(map, Keymap::defaults());
        // Both listed on one key: both go back, in one line; a clash that going back makes is
        // the next line.
        let (map, problems) =
            Keymap::from_toml("quit = [\"p\"]\nplay_stop = [\"p\"]\nhelp = [\"space\"]\n");
        assert_eq!(
            problems,
            [
                "p is bound to play_stop and quit: play_stop and quit keep their default keys",
                "space is bound to play_stop and help: help keeps its default keys",
            ]
        );
        assert_eq!(map, Keymap::defaults());
        let (map, problems) = Keymap::from_toml("undo = [\"ctrl+c\"]\nquit = = 1");
        assert_eq!(map, Keymap::defaults());
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("not read ("), "{problems:?}");
        let (_, problems) = Keymap::from_toml("undo = [\"ctrl+c\"]");
        assert_eq!(
            problems,
            ["ctrl+c always quits, it cannot run undo: undo keeps its default keys"]
        );
    }

    #[test]
    fn the_defaults_as_toml_read_back_as_the_defaults() {
        let text = Keymap::defaults().to_toml();
        assert!(text.contains("play_stop = [\"space\"]"), "{text}");
        assert_eq!(Keymap::from_toml(&text), (Keymap::defaults(), Vec::new()));
        let (map, _) = Keymap::from_toml("scroll_back = [\"\\\"\", \"\\\\\"]");
        assert_eq!(Keymap::from_toml(&map.to_toml()), (map, Vec::new()));
    }

    #[test]
    fn a_missing_file_is_the_defaults_quietly_and_a_bad_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEYS_FILE);
        assert_eq!(Keymap::load(&path), (Keymap::defaults(), Vec::new()));
        std::fs::write(&path, "quit = [\"nope\"]").unwrap();
        let (_, problems) = Keymap::load(&path);
        assert_eq!(
            problems,
            ["keys.toml: unknown key \"nope\" for quit: it keeps its default keys"]
        );
    }
}
