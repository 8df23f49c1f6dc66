//! `nanotune bench mutate DIR`: every reader of MIDI files on thousands of mutated copies of real
//! files. Each command runs in a child process of this program under a time limit, so an abort
//! (which no Rust code can catch) or a hang is counted, not suffered: `render` to a WAV file,
//! `describe`, and `play` to a listener of its own (a child too, receiving and saving: the
//! listener's decode, check and save path). Prints the outcomes, the slowest renders, and the
//! reasons of the refusals.

use crate::music::mutate::mutate;
use anyhow::{bail, Context, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How one command ended.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Ok,
    /// Exit 1 with an error line: the file was refused, as it should be.
    Refused(String),
    /// Exit 101: a Rust panic.
    Panicked(String),
    /// Killed by a signal it raised (an abort: a failed allocation, a stack overflow).
    Aborted(i32),
    TimedOut,
    Other(String),
}

impl Outcome {
    fn is_failure(&self) -> bool {
        !matches!(self, Outcome::Ok | Outcome::Refused(_))
    }

    fn label(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused(_) => "refused",
            Outcome::Panicked(_) => "PANICKED",
            Outcome::Aborted(_) => "ABORTED",
            Outcome::TimedOut => "TIMED OUT",
            Outcome::Other(_) => "OTHER",
        }
    }
}

/// Runs `command` to its end or `limit`; its outcome and seconds.
fn run_child(mut command: Command, limit: Duration) -> Result<(Outcome, f64)> {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting a child nanotune")?;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let seconds = started.elapsed().as_secs_f64();
    let stderr = read_stderr(&mut child);
    let first_error = stderr
        .lines()
        .find(|l| l.starts_with("error:") || l.contains("panicked"))
        .unwrap_or_default()
        .to_string();
    let outcome = match status {
        None => Outcome::TimedOut,
        Some(s) if s.success() => Outcome::Ok,
        Some(s) if s.code() == Some(1) => Outcome::Refused(first_error),
        Some(s) if s.code() == Some(101) => Outcome::Panicked(first_error),
        Some(s) => match s.signal() {
            Some(signal) => Outcome::Aborted(signal),
            None => Outcome::Other(format!("{s}: {first_error}")),
        },
    };
    Ok((outcome, seconds))
}

fn read_stderr(child: &mut Child) -> String {
    use std::io::Read;
    let mut text = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut text);
    }
    text
}

/// The refusal's reason without the file's own name and figures, to group like with like.
fn reason_kind(line: &str) -> String {
    let after_path = line.rsplit(".mid: ").next().unwrap_or(line);
    after_path
        .split(|c: char| c.is_ascii_digit())
        .next()
        .unwrap_or_default()
        .trim()
        .chars()
        .take(70)
        .collect()
}

pub fn bench_mutate(
    dir: &Path,
    files: usize,
    seed: u64,
    limit_seconds: u64,
    keep: Option<&Path>,
) -> Result<()> {
    let sources = midi_files(dir)?;
    if sources.is_empty() {
        bail!("no .mid files under {}", dir.display());
    }
    let exe = std::env::current_exe().context("finding this program")?;
    let work = WorkDir::new()?;
    let socket = work.path().join("listener.sock");
    let mut listener = Command::new(&exe)
        .arg("listen")
        .arg("--no-sound")
        .arg("--socket")
        .arg(&socket)
        .arg("--save-dir")
        .arg(work.path().join("saved"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting a listener")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "bench mutate: {files} mutated copies of {} real files under {} (seed {seed}), each \
         through render, describe and play (to a listener), {limit_seconds} s limit a command",
        sources.len(),
        dir.display()
    );
    let limit = Duration::from_secs(limit_seconds);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut renders: Vec<(f64, String)> = Vec::new();
    let mut failures = Vec::new();
    let started = Instant::now();
    for case in 0..files {
        let source = &sources[case % sources.len()];
        let bytes = std::fs::read(source)?;
        let (kind, mutated) = mutate(&bytes, &mut rng);
        *kinds.entry(kind.name()).or_default() += 1;
        let path = work.path().join(format!("case{case}.mid"));
        std::fs::write(&path, &mutated)?;
        let wav = work.path().join("out.wav");
        let commands: [(&str, Vec<&std::ffi::OsStr>); 3] = [
            (
                "render",
                vec![
                    "render".as_ref(),
                    path.as_os_str(),
                    "-o".as_ref(),
                    wav.as_os_str(),
                ],
            ),
            ("describe", vec!["describe".as_ref(), path.as_os_str()]),
            (
                "play",
                vec![
                    "play".as_ref(),
                    path.as_os_str(),
                    "--listener".as_ref(),
                    socket.as_os_str(),
                ],
            ),
        ];
        for (name, args) in commands {
            let mut command = Command::new(&exe);
            command.args(args).env_remove("NANOTUNE_SOUNDFONT");
            let (outcome, seconds) = run_child(command, limit)?;
            *counts.entry((name, outcome.label())).or_default() += 1;
            if let Outcome::Refused(line) = &outcome {
                *reasons
                    .entry(format!("{name}: {}", reason_kind(line)))
                    .or_default() += 1;
            }
            if name == "render" && outcome == Outcome::Ok {
                renders.push((
                    seconds,
                    format!("case {case} ({}, from {})", kind.name(), file_name(source)),
                ));
            }
            if outcome.is_failure() {
                failures.push(format!(
                    "case {case} ({}, from {}): {name}: {outcome:?}",
                    kind.name(),
                    file_name(source)
                ));
                if let Some(keep) = keep {
                    std::fs::create_dir_all(keep)?;
                    std::fs::write(keep.join(format!("case{case}.mid")), &mutated)?;
                }
            }
        }
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&wav);
        if (case + 1) % 100 == 0 {
            eprintln!(
                "  {} cases, {:.0} s",
                case + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let _ = listener.kill();
    let _ = listener.wait();
    renders.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!("mutations (the last of each case's one to three): {kinds:?}");
    for name in ["render", "describe", "play"] {
        let line: Vec<String> = counts
            .iter()
            .filter(|((n, _), _)| *n == name)
            .map(|((_, label), count)| format!("{label} {count}"))
            .collect();
        println!("{name:>9}: {}", line.join(", "));
    }
    let median = renders.get(renders.len() / 2).map_or(0.0, |r| r.0);
    println!(
        "seconds of the {} renders that wrote a file: median {median:.2}, slowest:",
        renders.len()
    );
    for (seconds, case) in renders.iter().take(5) {
        println!("  {seconds:6.2} s  {case}");
    }
    println!("refusals by reason:");
    for (reason, count) in &reasons {
        println!("  {count:5}  {reason}");
    }
    println!(
        "failures (panics, aborts, time-outs): {}; {:.0} s in all",
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    for f in &failures {
        println!("  {f}");
    }
    Ok(())
}

/// A folder of its own under the system's temporary folder, removed at the end.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> Result<WorkDir> {
        let dir =
            std::env::temp_dir().join(format!("nanotune-bench-mutate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(WorkDir(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// Every .mid/.midi file under `dir`, sorted.
fn midi_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if crate::music::read::is_midi_name(&path) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}
