//! Start-up: from spawning `tandem serve` to the first `200` from `/readyz`, on a
//! fresh SQLite file (migrations included) and again on the existing one.

use std::time::Duration;

use crate::server::{Backend, Launcher};

/// Start-up times of `runs` fresh starts and `runs` restarts.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) fresh: Vec<Duration>,
    pub(crate) restart: Vec<Duration>,
}

pub(crate) async fn run(launcher: &Launcher, runs: usize) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::default();
    for _ in 0..runs {
        let server = launcher.start(Backend::Sqlite).await?;
        outcome.fresh.push(server.ready_after);
        let dir = server.stop_keeping().await?;
        let server = launcher.start_in(dir).await?;
        outcome.restart.push(server.ready_after);
        server.stop().await?;
    }
    outcome.fresh.sort_unstable();
    outcome.restart.sort_unstable();
    Ok(outcome)
}

/// The median of sorted durations.
pub(crate) fn median(sorted: &[Duration]) -> Duration {
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}
