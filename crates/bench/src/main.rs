//! `tandem-bench`: starts the release `tandem` server (a child process on a free
//! loopback port, over a fresh database), runs named scenarios against it and
//! prints one table of the measures of DESIGN.md §8 next to their targets.
//! `docs/BENCHMARKS.md` says how to run it and what it found.
//!
//! It exits 1 when a correctness check fails (an event lost, doubled or out of
//! order, agent text changed); a missed speed target is reported, not fatal.

mod api;
mod post;
mod report;
mod scenarios;
mod server;
mod sse;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};

use crate::report::{Report, Verdict};
use crate::scenarios::{ceiling, fanout, redaction, resume, startup, storm, writes};
use crate::server::{Backend, Launcher, Server};
use crate::stats::{millis, per_second, rate, thousands};

/// Measure a tandem server against its performance targets.
#[derive(Debug, Parser)]
#[command(name = "tandem-bench", version, about)]
struct Cli {
    /// Scenarios to run [default: all of them].
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,
    /// The `tandem` binary to measure [default: the one next to this binary].
    #[arg(long)]
    server: Option<PathBuf>,
    /// A PostgreSQL server (no database in the URL) on which each Postgres run
    /// creates, then drops, a database of its own.
    #[arg(
        long,
        env = "TANDEM_BENCH_POSTGRES",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    postgres: String,
    /// Skip the runs on PostgreSQL.
    #[arg(long)]
    no_postgres: bool,
    /// The database of the fan-out, memory, resume and storm scenarios.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// Small sizes: checks that every scenario works, measures nothing.
    #[arg(long)]
    quick: bool,
    /// Subscribers of the one-session fan-out and of the memory scenario.
    #[arg(long)]
    subscribers: Option<usize>,
    /// Comments per second in the one-session fan-out.
    #[arg(long)]
    rate: Option<f64>,
    /// Sessions of the many-sessions fan-out.
    #[arg(long)]
    sessions: Option<usize>,
    /// Subscribers per session of the many-sessions fan-out.
    #[arg(long)]
    per_session: Option<usize>,
    /// Comments per second and session in the many-sessions fan-out.
    #[arg(long)]
    session_rate: Option<f64>,
    /// Seconds each fan-out publishes and each write run writes.
    #[arg(long)]
    seconds: Option<u64>,
    /// Writers (each waiting for its answer) of the writes spread over sessions.
    #[arg(long)]
    writers: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Scenario {
    /// One session, many SSE subscribers.
    Fanout,
    /// Many sessions, a few subscribers each.
    Sessions,
    /// Server memory per idle subscriber.
    Memory,
    /// Durable comment writes, spread and on one hot session, on both databases.
    Writes,
    /// Replay after a subscriber missed many events.
    Resume,
    /// An agent's output storm through the real echo agent.
    Storm,
    /// Start-up to ready.
    Startup,
}

/// The sizes of a run.
#[derive(Debug, Clone)]
struct Sizes {
    subscribers: usize,
    fanout_rate: f64,
    sessions: usize,
    per_session: usize,
    session_rate: f64,
    seconds: u64,
    spread_sessions: usize,
    spread_writers: usize,
    hot_writers: usize,
    missed: u64,
    storm_chunks: u64,
    storm_rate: u64,
    /// Bytes of agent text the redaction micro-measure goes through.
    redaction_bytes: usize,
    startup_runs: usize,
}

impl Sizes {
    fn full() -> Self {
        Self {
            subscribers: 10_000,
            fanout_rate: 25.0,
            sessions: 1_000,
            per_session: 10,
            session_rate: 2.0,
            seconds: 10,
            spread_sessions: 100,
            spread_writers: 50,
            hot_writers: 32,
            missed: 10_000,
            storm_chunks: 25_000,
            storm_rate: 5_000,
            redaction_bytes: 32 << 20,
            startup_runs: 5,
        }
    }

    fn quick() -> Self {
        Self {
            subscribers: 100,
            fanout_rate: 20.0,
            sessions: 10,
            per_session: 5,
            session_rate: 10.0,
            seconds: 1,
            spread_sessions: 10,
            spread_writers: 10,
            hot_writers: 8,
            missed: 500,
            storm_chunks: 2_000,
            storm_rate: 2_000,
            redaction_bytes: 256 << 10,
            startup_runs: 1,
        }
    }

    fn events(&self, per_second: f64) -> u64 {
        // At least one event; whole events.
        let events = (per_second * stats::float(self.seconds)).round().max(1.0);
        events.to_string().parse().unwrap_or(1)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut sizes = if cli.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    apply_overrides(&cli, &mut sizes);
    let launcher = Launcher {
        binary: match &cli.server {
            Some(path) => path.clone(),
            None => sibling("tandem")?,
        },
        postgres: (!cli.no_postgres).then(|| cli.postgres.trim_end_matches('/').to_owned()),
    };
    raise_open_file_limit();
    let mut scenarios = cli.scenarios.clone();
    if scenarios.is_empty() {
        scenarios = Scenario::value_variants().to_vec();
    }
    scenarios.sort_unstable();
    scenarios.dedup();
    eprintln!(
        "tandem-bench: {} on {}, {} logical CPUs",
        launcher.binary.display(),
        cli.backend.name(),
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    let mut report = Report::default();
    for scenario in &scenarios {
        eprintln!("\n== {scenario:?}");
        let ran = match scenario {
            Scenario::Fanout => {
                let memory = scenarios.contains(&Scenario::Memory);
                one_session_fan_out(&mut report, &launcher, cli.backend, &sizes, memory).await
            }
            Scenario::Sessions => {
                many_sessions_fan_out(&mut report, &launcher, cli.backend, &sizes).await
            }
            Scenario::Memory if scenarios.contains(&Scenario::Fanout) => Ok(()),
            Scenario::Memory => idle_memory(&mut report, &launcher, cli.backend, &sizes).await,
            Scenario::Writes => durable_writes(&mut report, &launcher, &sizes).await,
            Scenario::Resume => replay(&mut report, &launcher, cli.backend, &sizes).await,
            Scenario::Storm => output_storm(&mut report, &launcher, cli.backend, &sizes).await,
            Scenario::Startup => start_up(&mut report, &launcher, &sizes).await,
        };
        if let Err(error) = ran {
            report.add(
                &format!("{scenario:?}").to_lowercase(),
                "run",
                "completes",
                format!("failed: {error:#}"),
                Verdict::Broken,
            );
        }
    }
    println!("\n{}", report.table());
    if report.broken() {
        std::process::exit(1);
    }
    Ok(())
}

fn apply_overrides(cli: &Cli, sizes: &mut Sizes) {
    if let Some(subscribers) = cli.subscribers {
        sizes.subscribers = subscribers;
    }
    if let Some(rate) = cli.rate {
        sizes.fanout_rate = rate;
    }
    if let Some(sessions) = cli.sessions {
        sizes.sessions = sessions;
    }
    if let Some(per_session) = cli.per_session {
        sizes.per_session = per_session;
    }
    if let Some(rate) = cli.session_rate {
        sizes.session_rate = rate;
    }
    if let Some(seconds) = cli.seconds {
        sizes.seconds = seconds;
    }
    if let Some(writers) = cli.writers {
        sizes.spread_writers = writers;
    }
}

/// A binary next to this one (both are built into the same target directory).
fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("cannot find this binary")?;
    let dir = me.parent().context("this binary has no directory")?;
    let path = dir.join(name);
    anyhow::ensure!(
        path.exists(),
        "no `{name}` next to this binary in {}: build it first (cargo build --release -p tandem -p tandem-bench) or pass --server",
        dir.display()
    );
    Ok(path)
}

/// Raises the soft limit on open files to the hard limit, for this process and the
/// servers it starts: ten thousand streams need ten thousand sockets on each side.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(error) = setrlimit(Resource::Nofile, raised) {
            eprintln!("warning: cannot raise the open-file limit: {error}");
        }
    }
    let now = getrlimit(Resource::Nofile).current;
    eprintln!(
        "open-file limit: {}",
        now.map_or_else(|| "unlimited".to_owned(), |n| n.to_string())
    );
}

/// The fan-out measures of one run.
fn fan_out_rows(report: &mut Report, name: &str, outcome: &fanout::Outcome) {
    let delivered_per_second = per_second(outcome.deliveries, outcome.elapsed);
    report.add(
        name,
        "deliveries/s",
        "≥ 200,000/s",
        format!(
            "{} ({} deliveries in {}; hosts posted {})",
            rate(delivered_per_second),
            thousands(stats::float(outcome.deliveries)),
            millis(outcome.elapsed),
            rate(outcome.published_per_second)
        ),
        Verdict::target(delivered_per_second >= 200_000.0),
    );
    report.add(
        name,
        "publish→deliver (createdAt → read)",
        "p99 ≤ 150 ms",
        outcome.latencies.summary(),
        Verdict::target(
            outcome.latencies.len() > 0
                && outcome.latencies.percentile(99) <= Duration::from_millis(150),
        ),
    );
    report.add(
        name,
        "host's request → read",
        "—",
        outcome.send_latencies.summary(),
        Verdict::Info,
    );
    report.add(
        name,
        "every subscriber got every event once, in order",
        "all",
        format!(
            "{} of {} subscribers ({} of {} deliveries)",
            thousands(stats::float(outcome.complete as u64)),
            thousands(stats::float(outcome.subscribers as u64)),
            thousands(stats::float(outcome.deliveries)),
            thousands(stats::float(outcome.expected))
        ),
        Verdict::check(
            outcome.complete == outcome.subscribers && outcome.deliveries == outcome.expected,
        ),
    );
}

fn memory_row(report: &mut Report, subscribers: usize, before_kib: u64, idle_kib: u64) {
    let per =
        stats::float(idle_kib.saturating_sub(before_kib)) / stats::float(subscribers.max(1) as u64);
    report.add(
        "memory",
        "RSS per idle subscriber",
        "≤ 24 KiB",
        format!(
            "{per:.1} KiB ({} KiB → {} KiB with {} streams)",
            thousands(stats::float(before_kib)),
            thousands(stats::float(idle_kib)),
            thousands(stats::float(subscribers as u64))
        ),
        Verdict::target(per <= 24.0),
    );
}

/// Opens the streams and reads the server's memory before and after, idle.
async fn open_idle(
    server: &Server,
    prepared: Vec<fanout::Prepared>,
) -> anyhow::Result<(Vec<fanout::Watched>, u64, u64)> {
    let before = server.rss_kib()?;
    let watched = fanout::open(server, prepared).await?;
    // Let every stream reach its idle state (replayed nothing, waiting).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = server.rss_kib()?;
    Ok((watched, before, idle))
}

async fn one_session_fan_out(
    report: &mut Report,
    launcher: &Launcher,
    backend: Backend,
    sizes: &Sizes,
    memory: bool,
) -> anyhow::Result<()> {
    let server = launcher.start(backend).await?;
    eprintln!("joining {} participants to one session", sizes.subscribers);
    let prepared = fanout::prepare(&server, 1, sizes.subscribers).await?;
    eprintln!("opening {} streams", sizes.subscribers);
    let (watched, before, idle) = open_idle(&server, prepared).await?;
    if memory {
        memory_row(report, sizes.subscribers, before, idle);
    }
    let events = sizes.events(sizes.fanout_rate);
    eprintln!("posting {events} comments at {}/s", sizes.fanout_rate);
    let outcome = fanout::publish_and_watch(&server, watched, events, sizes.fanout_rate).await?;
    fan_out_rows(
        report,
        &format!(
            "fan-out 1 × {}",
            thousands(stats::float(sizes.subscribers as u64))
        ),
        &outcome,
    );
    server.stop().await
}

async fn many_sessions_fan_out(
    report: &mut Report,
    launcher: &Launcher,
    backend: Backend,
    sizes: &Sizes,
) -> anyhow::Result<()> {
    let server = launcher.start(backend).await?;
    eprintln!(
        "creating {} sessions with {} participants each",
        sizes.sessions, sizes.per_session
    );
    let prepared = fanout::prepare(&server, sizes.sessions, sizes.per_session).await?;
    let watched = fanout::open(&server, prepared).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events = sizes.events(sizes.session_rate);
    eprintln!(
        "posting {events} comments per session at {}/s each",
        sizes.session_rate
    );
    let outcome = fanout::publish_and_watch(&server, watched, events, sizes.session_rate).await?;
    fan_out_rows(
        report,
        &format!(
            "fan-out {} × {}",
            thousands(stats::float(sizes.sessions as u64)),
            sizes.per_session
        ),
        &outcome,
    );
    server.stop().await
}

async fn idle_memory(
    report: &mut Report,
    launcher: &Launcher,
    backend: Backend,
    sizes: &Sizes,
) -> anyhow::Result<()> {
    let server = launcher.start(backend).await?;
    let prepared = fanout::prepare(&server, 1, sizes.subscribers).await?;
    let (watched, before, idle) = open_idle(&server, prepared).await?;
    memory_row(report, sizes.subscribers, before, idle);
    drop(watched);
    server.stop().await
}

async fn durable_writes(
    report: &mut Report,
    launcher: &Launcher,
    sizes: &Sizes,
) -> anyhow::Result<()> {
    let duration = Duration::from_secs(sizes.seconds);
    let mut backends = vec![Backend::Postgres, Backend::Sqlite];
    if launcher.postgres.is_none() {
        backends.remove(0);
    }
    for backend in backends {
        let on_postgres = backend == Backend::Postgres;
        let server = launcher.start(backend).await?;
        eprintln!(
            "{}: {} writers over {} sessions",
            backend.name(),
            sizes.spread_writers,
            sizes.spread_sessions
        );
        let spread = writes::run(
            &server,
            sizes.spread_sessions,
            sizes.spread_writers,
            duration,
        )
        .await?;
        let spread_rate = per_second(spread.written, spread.elapsed);
        let name = format!(
            "writes {}, {} sessions",
            backend.name(),
            sizes.spread_sessions
        );
        report.add(
            &name,
            "comments/s",
            if on_postgres { "≥ 3,000/s" } else { "—" },
            format!("{} ({} writers)", rate(spread_rate), sizes.spread_writers),
            if on_postgres {
                Verdict::target(spread_rate >= 3_000.0)
            } else {
                Verdict::Info
            },
        );
        report.add(
            &name,
            "latency",
            if on_postgres { "p99 ≤ 50 ms" } else { "—" },
            spread.latencies.summary(),
            if on_postgres {
                Verdict::target(spread.latencies.percentile(99) <= Duration::from_millis(50))
            } else {
                Verdict::Info
            },
        );
        if let Some(url) = server.postgres_url() {
            eprintln!(
                "PostgreSQL's own ceiling: {} clients over the same {} sessions",
                sizes.spread_writers, sizes.spread_sessions
            );
            let ceiling =
                ceiling::run(&url, &spread.sessions, sizes.spread_writers, duration).await?;
            ceiling_rows(report, &name, spread_rate, &ceiling, Some(0.6));
        }
        eprintln!(
            "{}: {} writers on one session",
            backend.name(),
            sizes.hot_writers
        );
        let hot = writes::run(&server, 1, sizes.hot_writers, duration).await?;
        let hot_rate = per_second(hot.written, hot.elapsed);
        let name = format!("writes {}, one hot session", backend.name());
        report.add(
            &name,
            "comments/s",
            "≥ 500/s",
            format!("{} ({} writers)", rate(hot_rate), sizes.hot_writers),
            Verdict::target(hot_rate >= 500.0),
        );
        report.add(
            &name,
            "latency",
            "—",
            hot.latencies.summary(),
            Verdict::Info,
        );
        if let Some(url) = server.postgres_url() {
            eprintln!(
                "PostgreSQL's own ceiling: {} clients on the same session",
                sizes.hot_writers
            );
            let ceiling = ceiling::run(&url, &hot.sessions, sizes.hot_writers, duration).await?;
            ceiling_rows(report, &name, hot_rate, &ceiling, None);
        }
        server.stop().await?;
    }
    Ok(())
}

/// The database's ceiling for the same append, and Tandem's rate as a ratio of
/// it (a target when `at_least` is given).
fn ceiling_rows(
    report: &mut Report,
    name: &str,
    tandem_rate: f64,
    ceiling: &ceiling::Outcome,
    at_least: Option<f64>,
) {
    let ceiling_rate = per_second(ceiling.written, ceiling.elapsed);
    report.add(
        name,
        "PostgreSQL's ceiling: the same append, no HTTP",
        "reported",
        format!("{} ({})", rate(ceiling_rate), ceiling.latencies.summary()),
        Verdict::Info,
    );
    let ratio = if ceiling_rate > 0.0 {
        tandem_rate / ceiling_rate
    } else {
        0.0
    };
    report.add(
        name,
        "Tandem ÷ ceiling",
        &at_least.map_or_else(
            || "reported".to_owned(),
            |at_least| format!("≥ {at_least:.1}×"),
        ),
        format!(
            "{ratio:.2}× ({} ÷ {})",
            rate(tandem_rate),
            rate(ceiling_rate)
        ),
        at_least.map_or(Verdict::Info, |at_least| Verdict::target(ratio >= at_least)),
    );
}

async fn replay(
    report: &mut Report,
    launcher: &Launcher,
    backend: Backend,
    sizes: &Sizes,
) -> anyhow::Result<()> {
    let server = launcher.start(backend).await?;
    eprintln!("writing {} events nobody watches", sizes.missed);
    let outcome = resume::run(&server, sizes.missed).await?;
    let name = format!("resume after {}", thousands(stats::float(outcome.missed)));
    report.add(
        &name,
        "time to replay all",
        "≤ 1 s",
        format!(
            "{} ({})",
            millis(outcome.took),
            rate(per_second(outcome.replayed, outcome.took))
        ),
        Verdict::target(outcome.took <= Duration::from_secs(1)),
    );
    report.add(
        &name,
        "replayed once each, in order",
        "all",
        format!(
            "{} of {}",
            thousands(stats::float(outcome.replayed)),
            thousands(stats::float(outcome.missed))
        ),
        Verdict::check(outcome.in_order && outcome.replayed == outcome.missed),
    );
    server.stop().await
}

async fn output_storm(
    report: &mut Report,
    launcher: &Launcher,
    backend: Backend,
    sizes: &Sizes,
) -> anyhow::Result<()> {
    let server = launcher.start(backend).await?;
    eprintln!(
        "echo agent: {} chunks at {}/s",
        sizes.storm_chunks, sizes.storm_rate
    );
    let outcome = storm::run(&server, sizes.storm_chunks, sizes.storm_rate).await?;
    let name = format!(
        "agent storm {}/s",
        thousands(stats::float(sizes.storm_rate))
    );
    let rows_per_second = per_second(outcome.rows, outcome.ran_for);
    report.add(
        &name,
        "agent.output rows written per second",
        "≤ 20/s",
        format!(
            "{rows_per_second:.1}/s ({} rows for {} chunks in {})",
            outcome.rows,
            thousands(stats::float(outcome.chunks)),
            millis(outcome.ran_for)
        ),
        Verdict::target(rows_per_second <= 20.0),
    );
    report.add(
        &name,
        "all text delivered, log = stream",
        "all",
        format!(
            "{}; text {}; {} rows logged, {} streamed",
            outcome.ended,
            if outcome.text_intact {
                "intact"
            } else {
                "CHANGED"
            },
            outcome.logged_rows,
            outcome.rows
        ),
        Verdict::check(
            outcome.text_intact
                && outcome.ended == "prompt.completed"
                && outcome.logged_rows == outcome.rows,
        ),
    );
    server.stop().await?;
    redaction_throughput(report, sizes);
    Ok(())
}

/// The redactor's throughput on agent text, next to the storm it keeps up with.
fn redaction_throughput(report: &mut Report, sizes: &Sizes) {
    let outcome = redaction::run(sizes.redaction_bytes);
    let megabytes = stats::float(u64::try_from(outcome.bytes).unwrap_or(u64::MAX)) / 1e6;
    let name = "redaction (in process)";
    report.add(
        name,
        "agent text streamed in 16-byte chunks, released every 4 KiB",
        "reported",
        format!(
            "{:.1} MB/s ({megabytes:.1} MB in {}, {} secrets)",
            megabytes / outcome.streamed.as_secs_f64().max(1e-9),
            millis(outcome.streamed),
            outcome.redacted
        ),
        Verdict::Info,
    );
    report.add(
        name,
        "the same text redacted whole",
        "reported",
        format!(
            "{:.1} MB/s",
            megabytes / outcome.whole.as_secs_f64().max(1e-9)
        ),
        Verdict::Info,
    );
    report.add(
        name,
        "streamed = whole",
        "same text",
        if outcome.consistent {
            "same"
        } else {
            "DIFFERENT"
        }
        .to_owned(),
        Verdict::check(outcome.consistent && outcome.redacted > 0),
    );
}

async fn start_up(report: &mut Report, launcher: &Launcher, sizes: &Sizes) -> anyhow::Result<()> {
    let outcome = startup::run(launcher, sizes.startup_runs).await?;
    let fresh = startup::median(&outcome.fresh);
    let restart = startup::median(&outcome.restart);
    let slowest = outcome
        .fresh
        .iter()
        .chain(&outcome.restart)
        .max()
        .copied()
        .unwrap_or_default();
    report.add(
        "start-up (SQLite)",
        "spawn → /readyz 200",
        "≤ 300 ms",
        format!(
            "new database {} · existing {} · slowest of {} {}",
            millis(fresh),
            millis(restart),
            outcome.fresh.len() + outcome.restart.len(),
            millis(slowest)
        ),
        Verdict::target(slowest <= Duration::from_millis(300)),
    );
    Ok(())
}
