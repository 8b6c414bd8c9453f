//! The process's Prometheus recorder. The `metrics` facade has one global
//! recorder per process, so it is installed once and every server the process
//! builds (tests build several) serves the same handle at `/metrics`.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// How often histograms are drained, so that samples between scrapes do not
/// pile up in memory.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Buckets of `tandem_prompt_duration_seconds`: agent turns take from a fraction
/// of a second to many minutes.
const PROMPT_DURATION_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// Buckets of `tandem_webhook_delivery_lag_seconds` (event committed →
/// delivered): from a prompt hand-off to a day of retries.
const WEBHOOK_LAG_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0, 21600.0, 86400.0,
];

/// The handle of this process's recorder, installed on first use.
pub fn handle() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| install().map_err(|error| format!("{error:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(tandem_http::metrics::HTTP_REQUEST_DURATION.to_owned()),
            tandem_http::metrics::HTTP_REQUEST_DURATION_BUCKETS,
        )
        .context("invalid histogram buckets")?
        .set_buckets_for_metric(
            Matcher::Full("tandem_prompt_duration_seconds".to_owned()),
            PROMPT_DURATION_BUCKETS,
        )
        .context("invalid histogram buckets")?
        .set_buckets_for_metric(
            Matcher::Full("tandem_webhook_delivery_lag_seconds".to_owned()),
            WEBHOOK_LAG_BUCKETS,
        )
        .context("invalid histogram buckets")?
        .install_recorder()
        .context("cannot install the Prometheus recorder")?;
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            }
        })
        .context("cannot start the metrics upkeep thread")?;
    Ok(handle)
}
