//! A progress bar for Map Runs on stderr, shown only when stderr is a terminal.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mapfleet_core::maprun::MapRun;

pub struct Progress {
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress {
    pub fn new() -> Self {
        Progress {
            bar: Mutex::new(None),
        }
    }

    /// Shows a Map Run's counts: items read, succeeded, failed, rate and ETA.
    pub fn update(&self, run: &MapRun) {
        let Ok(mut guard) = self.bar.lock() else {
            return;
        };
        let bar = guard.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} {prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} items {per_sec} ETA {eta} {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        let items = run.item_counts();
        if run.reader_done {
            bar.set_length(items.total);
        }
        bar.set_prefix(
            mapfleet_core::maprun::map_run_id(&run.map_run_arn)
                .chars()
                .take(8)
                .collect::<String>(),
        );
        bar.set_position(items.succeeded + items.failed + items.timed_out + items.aborted);
        bar.set_message(format!(
            "read {} · succeeded {} · failed {}",
            items.total,
            items.succeeded,
            items.failed + items.timed_out
        ));
    }

    pub fn finish(&self) {
        if let Ok(mut guard) = self.bar.lock() {
            if let Some(bar) = guard.take() {
                bar.finish_and_clear();
            }
        }
    }
}
