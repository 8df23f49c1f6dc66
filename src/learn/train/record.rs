//! What a run leaves as it goes: at each evaluation the checkpoint's files, a line of log.csv and
//! a line on the terminal; between them, the progress bar.

use super::eval::Losses;
use super::resume::RunState;
use super::TrainOptions;
use crate::fsutil::write_atomic;
use crate::learn::checkpoint::{save_tensors, CheckpointConfig, LOG_FILE, MODEL_FILE, STATE_FILE};
use crate::learn::model::Gpt;
use anyhow::{Context, Result};
use candle_core::Tensor;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Steps between progress-bar updates of the training loss.
const PROGRESS_EVERY: usize = 10;

const LOG_HEADER: &[u8] = b"step,train_loss,val_loss,lr,tokens,seconds\n";

pub(super) struct Recorder {
    out: PathBuf,
    bar: ProgressBar,
    progress: bool,
    started: Instant,
    /// The `seconds` of the last line of a resumed run's log, so its clock goes on from there.
    seconds_before: f64,
    start_step: usize,
    tokens_per_step: u64,
    /// The training loss shown on the bar, smoothed.
    loss_avg: Option<f64>,
}

/// The last `seconds` in a log (0 where there is none to read).
fn last_seconds(log: &std::path::Path) -> f64 {
    std::fs::read_to_string(log)
        .ok()
        .and_then(|text| {
            let last = text
                .lines()
                .last()?
                .rsplit(',')
                .next()?
                .parse::<f64>()
                .ok()?;
            Some(last)
        })
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(0.0)
}

impl Recorder {
    /// Starts the clock and the bar at `start_step`, and log.csv unless a resumed run has one.
    pub fn new(opts: &TrainOptions, start_step: usize, tokens_per_step: u64) -> Result<Recorder> {
        let log = opts.out.join(LOG_FILE);
        let mut seconds_before = 0.0;
        if !opts.resume || !log.exists() {
            write_atomic(&log, LOG_HEADER)?;
        } else {
            seconds_before = last_seconds(&log);
        }
        Ok(Recorder {
            out: opts.out.clone(),
            bar: progress_bar(opts, start_step),
            progress: opts.progress,
            started: Instant::now(),
            seconds_before,
            start_step,
            tokens_per_step,
            loss_avg: None,
        })
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Training words per second since the start, `step` steps in.
    pub fn tokens_per_s(&self, step: usize) -> f64 {
        let words = (step - self.start_step) as f64 * self.tokens_per_step as f64;
        words / self.started.elapsed().as_secs_f64()
    }

    /// A line above the progress bar, or on stderr when there is no terminal to draw it on;
    /// nothing without `progress`.
    pub fn say(&self, line: String) {
        if !self.progress {
            return;
        }
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// Saves the checkpoint after an evaluation at `run.step`: the weights when `best`, then
    /// config.json, the resume state, train_state.json and a line of log.csv.
    /// Records an evaluation of `kept` (the run's model, or its weights' average), saving it as
    /// the best weights when `best`.
    pub fn evaluation(
        &self,
        run: &RunState,
        kept: &Gpt,
        losses: Losses,
        best: bool,
        lr: f64,
    ) -> Result<()> {
        if best {
            save_tensors(&self.out.join(MODEL_FILE), &kept.tensors())?;
        }
        CheckpointConfig::new(run.model.config().clone(), run.summary.clone()).save(&self.out)?;
        run.save(&self.out)?;
        let state = serde_json::json!({
            "step": run.step, "best_step": run.summary.best_step, "best_val_loss": run.best,
            "train_loss": losses.train, "val_loss": losses.val, "lr": lr,
        });
        write_atomic(
            &self.out.join(STATE_FILE),
            &serde_json::to_vec_pretty(&state)?,
        )?;
        let secs = self.seconds_before + self.started.elapsed().as_secs_f64();
        let line = format!(
            "{},{:.6},{:.6},{lr:.3e},{},{secs:.1}\n",
            run.step, losses.train, losses.val, run.summary.tokens
        );
        append(&self.out.join(LOG_FILE), &line)?;
        self.say(format!(
            "step {}: train loss {:.4}, val loss {:.4}{}",
            run.step,
            losses.train,
            losses.val,
            if best { " (best, saved)" } else { "" }
        ));
        Ok(())
    }

    /// Moves the bar to `step`; every few steps it shows the smoothed `loss` and the speed.
    pub fn stepped(&mut self, step: usize, loss: &Tensor) -> Result<()> {
        self.bar.set_position(step as u64);
        // Reading the loss waits for the device, so the bar shows it every few steps only.
        if self.progress && step.is_multiple_of(PROGRESS_EVERY) {
            let loss = loss.to_scalar::<f32>()? as f64;
            let avg = self.loss_avg.map_or(loss, |a| 0.7 * a + 0.3 * loss);
            self.loss_avg = Some(avg);
            let tps = self.tokens_per_s(step);
            self.bar
                .set_message(format!("loss {avg:.4} | {tps:.0} tok/s"));
        }
        Ok(())
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn progress_bar(opts: &TrainOptions, start: usize) -> ProgressBar {
    if !opts.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(opts.steps as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} step {pos}/{len} | {msg} | {elapsed_precise} ETA {eta_precise}",
        )
        .expect("valid template"),
    );
    bar.set_position(start as u64);
    bar.reset_eta();
    bar
}

fn append(path: &Path, line: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.write_all(line.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
