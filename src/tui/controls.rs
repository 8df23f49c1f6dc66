//! The screen's adjustable settings: one [`Control`] per [`ControlId`], each a value in a range
//! on a step grid. Most are drawn as gauges; Length, Scale, Range, Polyphony, Density and Seed
//! show a word for some values ([`Controls::shown`]).

use crate::music::range::PitchRange;

use crate::music::scale::Scale;
use crate::music::words::Vocab;
use crate::sample::SampleOptions;
use std::ops::{Index, IndexMut};

/// One adjustable setting, drawn as a gauge.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Control {
    pub name: &'static str,
    pub value: f64,
    pub min: f64,
    pub max: f64,
    pub step: f64,
    pub big_step: f64,
}

impl Control {
    const fn new(name: &'static str, value: f64, min: f64, max: f64, step: f64, big: f64) -> Self {
        Control {
            name,
            value,
            min,
            max,
            step,
            big_step: big,
        }
    }

    pub fn nudge(&mut self, steps: f64) {
        self.set(self.value + steps);
    }

    /// Sets the value, clamped to the range and put on the step grid (so 0.1 + 0.05 shows as
    /// 0.15, not 0.15000000000000002). Not-a-number leaves it as it was.
    pub fn set(&mut self, value: f64) {
        if value.is_nan() {
            return;
        }
        let v = value.clamp(self.min, self.max);
        let on_grid = ((v - self.min) / self.step).round() * self.step + self.min;
        // Two decimals at most: the grid of every fractional control is 0.05.
        self.value = ((on_grid * 100.0).round() / 100.0).clamp(self.min, self.max);
    }

    /// Sets the value at `ratio` (0..=1) of the range, as a click on the gauge does.
    pub fn set_ratio(&mut self, ratio: f64) {
        self.set(self.min + ratio.clamp(0.0, 1.0) * (self.max - self.min));
    }

    /// Position of the value within its range, 0..=1.
    pub fn ratio(&self) -> f64 {
        ((self.value - self.min) / (self.max - self.min)).clamp(0.0, 1.0)
    }
}

/// The scale lock as the Scale control holds it: off, the key the prompt fits best (found when
/// the prompt is known), or one of the 24 keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleChoice {
    Off,
    MatchPrompt,
    Key(Scale),
}

impl ScaleChoice {
    /// Off, match the prompt, then [`Scale::all`] in order.
    pub const COUNT: usize = 26;

    pub fn from_index(i: usize) -> ScaleChoice {
        match i {
            0 => ScaleChoice::Off,
            1 => ScaleChoice::MatchPrompt,
            i => Scale::all()
                .nth(i - 2)
                .map_or(ScaleChoice::Off, ScaleChoice::Key),
        }
    }

    pub fn index(self) -> usize {
        match self {
            ScaleChoice::Off => 0,
            ScaleChoice::MatchPrompt => 1,
            ScaleChoice::Key(s) => 2 + Scale::all().position(|k| k == s).unwrap_or(0),
        }
    }

    /// As the screen and the settings file write it: `off`, `match prompt`, `G major`.
    pub fn label(self) -> String {
        match self {
            ScaleChoice::Off => "off".into(),
            ScaleChoice::MatchPrompt => "match prompt".into(),
            ScaleChoice::Key(s) => s.to_string(),
        }
    }

    /// Reads [`ScaleChoice::label`] back (any key name `--scale` takes, too).
    pub fn parse(text: &str) -> Option<ScaleChoice> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("off") {
            Some(ScaleChoice::Off)
        } else if t.eq_ignore_ascii_case("match prompt") {
            Some(ScaleChoice::MatchPrompt)
        } else {
            t.parse().ok().map(ScaleChoice::Key)
        }
    }
}

/// The controls, in screen order. A new control is a variant here, in [`ControlId::ALL`] and in
/// [`ControlId::initial`]; the screen draws and steps every control of `ALL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlId {
    Temperature,
    Tokens,
    /// Length in bars; 0 = by tokens.
    Length,
    TopK,
    TopP,
    /// An index of [`ScaleChoice`].
    Scale,
    /// 0 = off, else a two-octave window (see [`Controls::range`]).
    Range,
    /// Notes sounding at once at most; 0 = off.
    Polyphony,
    /// Notes per beat to steer toward; 0 = off.
    Density,
    Bpm,
    Volume,
    Seed,
}

impl ControlId {
    pub const ALL: [ControlId; 12] = [
        ControlId::Temperature,
        ControlId::Tokens,
        ControlId::Length,
        ControlId::TopK,
        ControlId::TopP,
        ControlId::Scale,
        ControlId::Range,
        ControlId::Polyphony,
        ControlId::Density,
        ControlId::Bpm,
        ControlId::Volume,
        ControlId::Seed,
    ];

    /// The control as the screen opens: the library's sampling defaults, and `seed`.
    fn initial(self, defaults: &SampleOptions, seed: u64) -> Control {
        match self {
            ControlId::Temperature => {
                // The f32 default read as f64 is 0.8999999...; the gauge steps on a grid of 0.05.
                let t = (f64::from(defaults.temperature) * 100.0).round() / 100.0;
                Control::new("Temperature", t, 0.05, 2.0, 0.05, 0.25)
            }
            ControlId::Tokens => {
                Control::new("Tokens", defaults.words as f64, 50.0, 4000.0, 50.0, 500.0)
            }
            ControlId::Length => {
                let bars = defaults.bars.unwrap_or(0) as f64;
                Control::new("Length", bars, 0.0, 64.0, 1.0, 4.0)
            }
            ControlId::TopK => {
                let k = defaults.top_k as f64;
                Control::new("Top-k", k, 1.0, Vocab.len() as f64, 1.0, 10.0)
            }
            ControlId::TopP => {
                Control::new("Top-p", f64::from(defaults.top_p), 0.05, 1.0, 0.05, 0.25)
            }
            ControlId::Scale => {
                let max = (ScaleChoice::COUNT - 1) as f64;
                let at = defaults.scale.map_or(ScaleChoice::Off, ScaleChoice::Key);
                // The big step moves by a whole tonic (its major and its minor).
                Control::new("Scale", at.index() as f64, 0.0, max, 1.0, 2.0)
            }
            ControlId::Range => {
                let at = defaults
                    .range
                    .map_or(0.0, |r| Controls::range_index(r) as f64);
                // The big step is an octave.
                Control::new("Range", at, 0.0, RANGE_WINDOWS as f64, 1.0, 12.0)
            }
            ControlId::Polyphony => {
                let k = defaults.polyphony.unwrap_or(0).min(8) as f64;
                Control::new("Polyphony", k, 0.0, 8.0, 1.0, 2.0)
            }
            ControlId::Density => {
                let d = defaults
                    .density
                    .map_or(0.0, |d| (f64::from(d) * 2.0).round() / 2.0);
                Control::new("Density", d, 0.0, 8.0, 0.5, 2.0)
            }
            ControlId::Bpm => Control::new("BPM", 120.0, 40.0, 240.0, 1.0, 10.0),
            ControlId::Volume => Control::new("Volume", 80.0, 0.0, 100.0, 5.0, 20.0),
            ControlId::Seed => {
                let s = (seed % 1_000_000) as f64;
                Control::new("Seed", s, 0.0, 999_999.0, 1.0, 1000.0)
            }
        }
    }

    /// Where it is in [`ControlId::ALL`] (the variants are declared in that order).
    pub fn position(self) -> usize {
        self as usize
    }

    /// The control `by` places further down the screen, wrapping around.
    pub fn moved(self, by: isize) -> ControlId {
        let n = Self::ALL.len() as isize;
        Self::ALL[(self.position() as isize + by).rem_euclid(n) as usize]
    }

    /// Whether the screen draws it as a gauge (a bar to click on); the others show a word.
    pub fn has_gauge(self) -> bool {
        !matches!(self, ControlId::Scale | ControlId::Range | ControlId::Seed)
    }
}

/// The Range control's windows: two octaves whose lowest note runs from C1 (24) to C6 (84).
const RANGE_LOWEST: u8 = 24;
const RANGE_WINDOWS: u8 = 61;
const RANGE_WIDTH: u8 = 24;

/// Every control's value and range, indexed by [`ControlId`].
#[derive(Clone, Debug, PartialEq)]
pub struct Controls([Control; ControlId::ALL.len()]);

impl Controls {
    pub fn new(defaults: &SampleOptions, seed: u64) -> Controls {
        Controls(ControlId::ALL.map(|id| id.initial(defaults, seed)))
    }

    /// Each control with its id, in screen order.
    pub fn iter(&self) -> impl Iterator<Item = (ControlId, &Control)> {
        ControlId::ALL.into_iter().zip(self.0.iter())
    }

    /// The Scale control's choice.
    pub fn scale(&self) -> ScaleChoice {
        ScaleChoice::from_index(self[ControlId::Scale].value as usize)
    }

    /// The Length control in bars; `None` when off (the piece is as long as Tokens).
    pub fn bars(&self) -> Option<u32> {
        let bars = self[ControlId::Length].value as u32;
        (bars > 0).then_some(bars)
    }

    /// The Range control's window; `None` when off.
    pub fn range(&self) -> Option<PitchRange> {
        let i = self[ControlId::Range].value as u8;
        (i > 0).then(|| {
            let low = RANGE_LOWEST + i - 1;
            PitchRange {
                low,
                high: low + RANGE_WIDTH,
            }
        })
    }

    /// The Range control's value for the window nearest `range` (its lowest note), 1 at least.
    pub fn range_index(range: PitchRange) -> u8 {
        range
            .low
            .clamp(RANGE_LOWEST, RANGE_LOWEST + RANGE_WINDOWS - 1)
            - RANGE_LOWEST
            + 1
    }

    /// The Polyphony control; `None` when off.
    pub fn polyphony(&self) -> Option<usize> {
        let k = self[ControlId::Polyphony].value as usize;
        (k > 0).then_some(k)
    }

    /// The Density control in notes per beat; `None` when off.
    pub fn density(&self) -> Option<f32> {
        let d = self[ControlId::Density].value as f32;
        (d > 0.0).then_some(d)
    }

    /// The value of `id` as the screen writes it: a word where the number means one.
    pub fn shown(&self, id: ControlId) -> String {
        let c = &self[id];
        match id {
            ControlId::Scale => self.scale().label(),
            ControlId::Length => match self.bars() {
                None => "off".into(),
                Some(n) => format!("{n} bars"),
            },
            ControlId::Range => self.range().map_or("off".into(), |r| r.to_string()),
            ControlId::Polyphony if self.polyphony().is_none() => "off".into(),
            ControlId::Density if self.density().is_none() => "off".into(),
            _ if c.step < 1.0 => format!("{:.2}", c.value),
            _ => format!("{:.0}", c.value),
        }
    }
}

impl Index<ControlId> for Controls {
    type Output = Control;
    fn index(&self, id: ControlId) -> &Control {
        &self.0[id.position()]
    }
}

impl IndexMut<ControlId> for Controls {
    fn index_mut(&mut self, id: ControlId) -> &mut Control {
        &mut self.0[id.position()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_indexed_in_screen_order() {
        let controls = Controls::new(&SampleOptions::default(), 7);
        for (i, (id, control)) in controls.iter().enumerate() {
            assert_eq!(id.position(), i, "{id:?} is declared out of ALL's order");
            assert_eq!(controls[id], *control);
        }
        assert_eq!(controls[ControlId::Seed].value, 7.0);
        assert_eq!(controls[ControlId::Tokens].value, 500.0);
        let last = ControlId::ALL[ControlId::ALL.len() - 1];
        assert_eq!(ControlId::Temperature.moved(-1), last);
        assert_eq!(last.moved(1), ControlId::Temperature);
        assert_eq!(ControlId::Temperature.moved(1), ControlId::Tokens);
    }

    #[test]
    fn every_scale_choice_has_an_index_and_a_label_that_read_back() {
        let mut labels = std::collections::HashSet::new();
        for i in 0..ScaleChoice::COUNT {
            let choice = ScaleChoice::from_index(i);
            assert_eq!(choice.index(), i);
            assert_eq!(ScaleChoice::parse(&choice.label()), Some(choice));
            labels.insert(choice.label());
        }
        assert_eq!(labels.len(), 26);
        assert_eq!(
            ScaleChoice::from_index(2),
            ScaleChoice::Key(Scale::major(0))
        );
        assert_eq!(
            ScaleChoice::parse("F#m"),
            Some(ScaleChoice::Key(Scale::minor(6)))
        );
        assert_eq!(ScaleChoice::parse("Lydian"), None);
    }

    #[test]
    fn length_and_scale_show_words() {
        let mut c = Controls::new(&SampleOptions::default(), 0);
        assert_eq!((c.shown(ControlId::Length), c.bars()), ("off".into(), None));
        c[ControlId::Length].nudge(8.0);
        assert_eq!(
            (c.shown(ControlId::Length), c.bars()),
            ("8 bars".into(), Some(8))
        );
        assert_eq!(c.shown(ControlId::Scale), "off");
        c[ControlId::Scale].nudge(1.0);
        assert_eq!(c.shown(ControlId::Scale), "match prompt");
        c[ControlId::Scale].set_ratio(1.0);
        assert_eq!(c.shown(ControlId::Scale), "B minor");
        c[ControlId::Temperature].set_ratio(1.0);
        assert_eq!(c.shown(ControlId::Temperature), "2.00");
        c[ControlId::Volume].set_ratio(0.52);
        assert_eq!(c.shown(ControlId::Volume), "50");
    }
}
