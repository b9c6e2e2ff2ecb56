//! The progress bar of a run: first participants joining (`12/100 joined`), then the measured
//! phase against its duration. Drawn on stderr by `indicatif`, which hides it when stderr is not
//! a terminal, so logs and CI output stay clean.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A run's progress bar.
#[derive(Debug)]
pub struct RunProgress {
    bar: ProgressBar,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        // Only the constant templates below are passed in, and they are valid.
        .expect("valid progress template")
        .progress_chars("=> ")
}

const JOIN_TEMPLATE: &str = "{prefix} [{bar:40}] {pos}/{len} joined {msg}";
const RUN_TEMPLATE: &str = "{prefix} [{bar:40}] {elapsed_precise} of {len}s {msg}";

impl RunProgress {
    /// A bar on stderr for `participants` joining, labelled `label` (e.g. `meeting x50`).
    pub fn joining(label: &str, participants: u64) -> Self {
        Self::with_target(label, participants, ProgressDrawTarget::stderr())
    }

    /// Like [`RunProgress::joining`] but drawing nowhere (tests, `--quiet` runs).
    pub fn hidden(label: &str, participants: u64) -> Self {
        Self::with_target(label, participants, ProgressDrawTarget::hidden())
    }

    fn with_target(label: &str, participants: u64, target: ProgressDrawTarget) -> Self {
        let bar = ProgressBar::with_draw_target(Some(participants), target);
        bar.set_style(style(JOIN_TEMPLATE));
        bar.set_prefix(label.to_owned());
        RunProgress { bar }
    }

    /// Sets how many participants have joined.
    pub fn set_joined(&self, joined: u64) {
        self.bar.set_position(joined);
    }

    /// Switches to the measured phase of `duration`.
    pub fn start_running(&self, duration: Duration) {
        self.bar.set_style(style(RUN_TEMPLATE));
        self.bar.set_length(duration.as_secs().max(1));
        self.bar.set_position(0);
        self.bar.reset_elapsed();
    }

    /// Sets the time spent in the measured phase and a short status (e.g. packets relayed).
    pub fn set_running(&self, elapsed: Duration, status: String) {
        self.bar.set_position(elapsed.as_secs());
        self.bar.set_message(status);
    }

    /// Removes the bar before the summary table is printed.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// Position and length of the bar (joined/participants, then seconds/duration).
    pub fn position(&self) -> (u64, Option<u64>) {
        (self.bar.position(), self.bar.length())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goes_from_joining_to_running() {
        let p = RunProgress::hidden("meeting x4", 4);
        assert_eq!(p.position(), (0, Some(4)));
        p.set_joined(3);
        assert_eq!(p.position(), (3, Some(4)));
        p.start_running(Duration::from_secs(30));
        assert_eq!(p.position(), (0, Some(30)));
        p.set_running(Duration::from_millis(12_500), "1000 packets".into());
        assert_eq!(p.position(), (12, Some(30)));
        p.finish();
    }
}
