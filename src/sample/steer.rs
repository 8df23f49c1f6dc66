//! Soft steering of the density: new music near D notes per beat. Where the running density of
//! the new part is above D, every pitch the model could add at this onset is made less likely
//! (against a time shift) and longer shifts more likely; below D the other way, in proportion to
//! how far off it is (the log of the ratio). The model still chooses; a hard limit would force
//! chords or silences the music does not lead to.

use super::grammar::{Grammar, State};
use crate::music::notes::STEPS_PER_QUARTER;
use crate::music::words::Vocab;

/// Logit change of a pitch per unit of log-ratio off the target.
const PITCH_GAIN: f32 = 10.0;
/// Logit change of a shift of k steps, per unit of log-ratio, per unit of ln k.
const SHIFT_GAIN: f32 = 4.0;
/// Beats of the target density the running figure starts from, so the first notes do not swing
/// it wildly.
const PRIOR_BEATS: f32 = 2.0;

/// The running density of one take and its target.
#[derive(Clone, Debug)]
pub(super) struct Density {
    target: f32,
    /// Where the new part starts (grid steps).
    from: u64,
    notes: usize,
}

impl Density {
    pub fn new(target: f32, from: u64) -> Density {
        Density {
            target,
            from,
            notes: 0,
        }
    }

    /// Counts word `id` once chosen.
    pub fn chose(&mut self, id: u16) {
        self.notes += Vocab.pitch(id).is_some() as usize;
    }

    /// How far off the target the new part runs: ln(running / target), 0 when on it.
    fn error(&self, grammar: &Grammar) -> f32 {
        let beats = grammar.onset().saturating_sub(self.from) as f32 / STEPS_PER_QUARTER as f32;
        let running = (self.notes as f32 + self.target * PRIOR_BEATS) / (beats + PRIOR_BEATS);
        (running / self.target).ln()
    }

    /// Moves `logits` toward the target for the next word after `grammar`.
    pub fn steer(&self, grammar: &Grammar, logits: &mut [f32]) {
        let e = self.error(grammar);
        match grammar.state() {
            State::Ready | State::Shifted(_) => {
                for id in Vocab::PITCH_IDS {
                    logits[id as usize] -= PITCH_GAIN * e;
                }
            }
            State::ShiftDuration => {
                for id in Vocab::DURATION_IDS {
                    let k = Vocab.duration(id).unwrap_or(1) as f32;
                    logits[id as usize] += SHIFT_GAIN * e * k.ln();
                }
            }
            _ => {}
        }
    }
}
