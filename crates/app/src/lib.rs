//! `tandem`, the server: configuration, the wiring of every adapter, start-up and
//! graceful shutdown. This is the only crate that knows every concrete type.

pub mod config;
pub mod prometheus;
pub mod redaction;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tandem_agent::{AcpExecutor, OpenAiExecutor};
use tandem_ports::{AgentExecutor, Clock, EventBus, SessionStore, SystemClock};
use tandem_postgres::{PostgresEventBus, PostgresStore};
use tandem_service::{
    Agents, CreatedApiKey, LocalEventBus, PromptRunner, RunnerConfig, ServiceConfig, Tandem,
    WebhookDispatcher,
};
use tandem_sqlite::SqliteStore;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{AgentProfile, Config, Connections, LogFormat, WebhookSettings};

/// The store `database_url` names (schema brought up to date) and the event bus
/// that goes with it: local for SQLite, LISTEN/NOTIFY across replicas for Postgres.
pub async fn open_backend(
    config: &Config,
) -> anyhow::Result<(Arc<dyn SessionStore>, Arc<dyn EventBus>)> {
    let url = config.database_url.as_str();
    let shown = config::redact_url(url);
    if url.starts_with("sqlite:") {
        let store = SqliteStore::open(url)
            .await
            .with_context(|| format!("cannot open the SQLite database {shown}"))?;
        Ok((Arc::new(store), Arc::new(LocalEventBus::new())))
    } else {
        let store = PostgresStore::connect(url, config.database_max_connections)
            .await
            .with_context(|| format!("cannot connect to PostgreSQL at {shown}"))?;
        store
            .migrate()
            .await
            .with_context(|| format!("cannot migrate the database at {shown}"))?;
        let bus = PostgresEventBus::start(store.pool().clone())
            .await
            .with_context(|| format!("cannot LISTEN for events on {shown}"))?;
        Ok((Arc::new(store), Arc::new(bus)))
    }
}

/// Brings the schema of the configured database up to date, without starting
/// anything else (`tandem migrate`).
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let url = config.database_url.as_str();
    let shown = config::redact_url(url);
    if url.starts_with("sqlite:") {
        // Opening a SQLite store migrates it.
        SqliteStore::open(url)
            .await
            .with_context(|| format!("cannot open the SQLite database {shown}"))?
            .close()
            .await;
    } else {
        PostgresStore::connect(url, 1)
            .await
            .with_context(|| format!("cannot connect to PostgreSQL at {shown}"))?
            .migrate()
            .await
            .with_context(|| format!("cannot migrate the database at {shown}"))?;
    }
    Ok(())
}

/// The use cases over the configured store and bus.
pub async fn service(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Tandem> {
    let (store, bus) = open_backend(config).await?;
    let service_config = ServiceConfig {
        limits: config.limits,
        agent_profiles: config.agents.keys().cloned().collect(),
        default_agent_profile: config.default_agent.clone(),
        permission_timeout: chrono::TimeDelta::from_std(config.permission_timeout)
            .context("the permission timeout is too long")?,
        ..ServiceConfig::default()
    };
    Ok(Tandem::new(store, bus, clock, service_config))
}

/// The executors of the configured agent profiles: one ACP executor for every
/// subprocess profile, one OpenAI executor for every endpoint profile.
pub fn agents(config: &Config) -> anyhow::Result<Agents> {
    let mut acp = BTreeMap::new();
    let mut openai = BTreeMap::new();
    let withheld = server_secrets();
    for (name, profile) in &config.agents {
        match profile {
            AgentProfile::Acp(profile) => {
                let mut profile = profile.clone();
                profile.withheld_env.extend(withheld.iter().cloned());
                acp.insert(name.clone(), profile);
            }
            AgentProfile::OpenAi(profile) => {
                openai.insert(name.clone(), profile.clone());
            }
        }
    }
    let acp_names: Vec<_> = acp.keys().cloned().collect();
    let openai_names: Vec<_> = openai.keys().cloned().collect();
    let acp: Arc<dyn AgentExecutor> = Arc::new(AcpExecutor::new(acp));
    let openai: Arc<dyn AgentExecutor> = Arc::new(
        OpenAiExecutor::new(openai).context("cannot set up the OpenAI-compatible agents")?,
    );
    let mut agents = Agents::new();
    for name in acp_names {
        agents = agents.with(name, Arc::clone(&acp));
    }
    for name in openai_names {
        agents = agents.with(name, Arc::clone(&openai));
    }
    Ok(agents)
}

/// The variables of the server's environment that agents do not inherit: its
/// database URL and every `TANDEM_*` setting (the bootstrap admin key among them).
/// A profile's own `env` can still pass one on purpose.
fn server_secrets() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| name == "DATABASE_URL" || name.starts_with("TANDEM_"))
        .collect()
}

/// The redactor of agent output, from `[redaction]` and the secrets the server
/// knows of; says at start what it does, loudly when it is off.
fn redactor(config: &Config) -> anyhow::Result<Arc<tandem_service::Redactor>> {
    let (redactor, unused) = redaction::redactor(config, redaction::server_env())?;
    for unused in unused {
        match unused {
            redaction::Unused::Unset(name) => {
                tracing::warn!(variable = %name, "[redaction] env names a variable that is not set");
            }
            redaction::Unused::TooShort(name) => tracing::warn!(
                variable = %name,
                min_chars = redaction::MIN_NAMED_SECRET_LEN,
                "[redaction] env names a variable whose value is too short to redact"
            ),
        }
    }
    if redactor.is_enabled() {
        tracing::info!(
            rules = redactor.rule_count(),
            known_secrets = redactor.known_secret_count(),
            "redacting secrets from agent output"
        );
    } else {
        tracing::warn!(
            "REDACTION IS OFF ([redaction] enabled = false): secrets that agents print are \
             stored, streamed and shown to every participant as they are"
        );
    }
    Ok(Arc::new(redactor))
}

/// A server ready to serve: store open and migrated, admin key bootstrapped,
/// listener bound.
#[derive(Debug)]
pub struct Server {
    tandem: Tandem,
    /// The API and the web app (the server tells them each connection's peer
    /// address, for rate limits of writes without a credential key on it).
    router: axum::Router,
    /// How connections are served: deadlines, caps and head limits.
    connections: tandem_http::ServeConfig,
    streams: tandem_http::StreamCloser,
    listener: TcpListener,
    bootstrapped: Option<CreatedApiKey>,
    runner: PromptRunner,
    sweep_interval: Duration,
    work: WorkRuntime,
}

/// The runtime that handles requests, runs prompts and sweeps sessions, apart
/// from the one that serves connections: with thousands of event streams open,
/// the serving runtime is busy writing them, and a write or an agent's output
/// must not wait behind every stream's turn.
#[derive(Debug)]
struct WorkRuntime(Option<tokio::runtime::Runtime>);

impl WorkRuntime {
    fn start() -> anyhow::Result<Self> {
        let threads = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("tandem-work")
            .enable_all()
            .build()
            .context("cannot start the work runtime")?;
        Ok(Self(Some(runtime)))
    }

    fn handle(&self) -> tokio::runtime::Handle {
        self.0
            .as_ref()
            .map_or_else(tokio::runtime::Handle::current, |runtime| {
                runtime.handle().clone()
            })
    }
}

impl Drop for WorkRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            // Whatever is left (nothing, after a graceful stop) is dropped; this
            // never blocks, so it is safe inside the serving runtime.
            runtime.shutdown_background();
        }
    }
}

/// How many connections the kernel may hold for the server to accept: the
/// default of 128 overflows under a burst of a few hundred clients, which then
/// wait a second or more to retry (the kernel caps it at `somaxconn`).
const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `addr` (port 0 picks a free one) with a backlog fit for bursts.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Builds the server on `listener` (bind port 0 in tests).
pub async fn build(config: Config, listener: TcpListener) -> anyhow::Result<Server> {
    build_with_clock(config, listener, Arc::new(SystemClock)).await
}

/// Builds the server with a given clock (tests move time).
pub async fn build_with_clock(
    config: Config,
    listener: TcpListener,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Server> {
    config.validate()?;
    let agents = agents(&config)?;
    let redactor = redactor(&config)?;
    let public_url = config.public_url.trim_end_matches('/').to_owned();
    let sender = tandem_webhook::HttpWebhookSender::new(config.webhooks.outbound.clone())
        .context("cannot set up outbound webhooks")?;
    let delivery = tandem_service::WebhookConfig {
        public_url: public_url.clone(),
        ..config.webhooks.delivery.clone()
    };
    let tandem = service(&config, clock)
        .await?
        .with_webhooks(Arc::new(sender), delivery);
    let bootstrapped = tandem
        .bootstrap_admin_key(config.bootstrap_admin_key.clone())
        .await
        .context("cannot bootstrap the admin API key")?;
    let runner_config = RunnerConfig {
        redactor,
        ..config.runner.clone()
    };
    let runner = PromptRunner::new(tandem.clone(), agents, runner_config)
        .await
        .context("cannot start the prompt runner")?;
    let work = WorkRuntime::start()?;
    let open_files = raise_open_file_limit();
    let connections = config.connections.serve_config(
        config
            .connections
            .max_connections
            .unwrap_or_else(|| default_max_connections(open_files)),
    );
    if let Some(open_files) = open_files
        && connections.max_connections as u64 + RESERVED_FILES > open_files
    {
        tracing::warn!(
            max_connections = connections.max_connections,
            open_files,
            "the connection limit is above what the open-file limit allows; accepting will fail before the limit is reached"
        );
    }
    tracing::info!(
        max_connections = connections.max_connections,
        "serving at most this many connections at once"
    );
    let http = tandem_http::HttpConfig {
        public_url,
        cors_origins: config.cors_origins.clone(),
        body_limit_bytes: config.body_limit_bytes,
        rate_limit: config.rate_limit,
        metrics: Some(prometheus::handle()?),
        keep_alive: config.stream_keep_alive,
        handlers: Some(work.handle()),
        connections,
    };
    let (router, streams) = tandem_http::router_with_closer(tandem.clone(), http);
    // The web app's pages and assets beside the API; it calls the API like any client.
    let router = router.merge(tandem_web::router());
    Ok(Server {
        tandem,
        router,
        connections,
        streams,
        listener,
        bootstrapped,
        runner,
        sweep_interval: config.sweep_interval,
        work,
    })
}

impl Server {
    /// The address the server listens on.
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listener
            .local_addr()
            .context("the listener has no local address")
    }

    /// The admin key created at this start, if there was none before.
    pub fn bootstrapped_key(&self) -> Option<&CreatedApiKey> {
        self.bootstrapped.as_ref()
    }

    /// The use cases, for tests that need to act behind the API.
    pub fn tandem(&self) -> &Tandem {
        &self.tandem
    }

    /// Serves until `shutdown` completes, running prompts, expiring sessions and
    /// delivering webhooks meanwhile. Then, at once, it stops accepting, ends the open event streams
    /// (their clients resume elsewhere with `Last-Event-ID`) and tells the prompt
    /// runner to stop, so that no queued prompt starts any more and running ones
    /// are asked to end. It lets in-flight requests finish (for at most
    /// [`DRAIN_WITHIN`]), waits for the runner to record how each running prompt
    /// ended and to stop the agents, and closes the database pool.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stopping = CancellationToken::new();
        let (runner, sweeper, webhooks) = {
            // They run on the work runtime, as do the tasks they start.
            let _work = self.work.handle().enter();
            let runner = self.runner.start(stopping.clone());
            let sweeper = tokio::spawn(sweep(
                self.tandem.clone(),
                self.sweep_interval,
                stopping.clone(),
            ));
            let webhooks = WebhookDispatcher::new(self.tandem.clone()).start(stopping.clone());
            (runner, sweeper, webhooks)
        };
        let streams = self.streams;
        let signalled = stopping.clone();
        let shutdown = async move {
            shutdown.await;
            signalled.cancel();
            streams.close_all();
        };
        let serving = tandem_http::serve(self.listener, self.router, self.connections, shutdown);
        tokio::pin!(serving);
        let served = tokio::select! {
            served = &mut serving => served.context("the HTTP server failed"),
            () = async {
                stopping.cancelled().await;
                tokio::time::sleep(DRAIN_WITHIN).await;
            } => {
                tracing::warn!(
                    seconds = DRAIN_WITHIN.as_secs(),
                    "requests were still in flight after the shutdown grace; stopping anyway"
                );
                Ok(())
            }
        };
        stopping.cancel();
        if let Err(error) = runner.await {
            tracing::error!(%error, "the prompt runner failed");
        }
        if let Err(error) = sweeper.await {
            tracing::error!(%error, "the session sweeper failed");
        }
        if let Err(error) = webhooks.await {
            tracing::error!(%error, "the webhook dispatcher failed");
        }
        self.tandem.close().await;
        served
    }
}

/// How long a graceful shutdown waits for requests in flight (event streams end
/// at once; these are ordinary requests).
pub const DRAIN_WITHIN: Duration = Duration::from_secs(10);

/// Open files kept for other uses than connections: the database, agents'
/// pipes, logs.
const RESERVED_FILES: u64 = 256;

/// Raises this process's open-file limit to its hard limit (each connection
/// holds a file descriptor), logs it, and returns the limit now in force
/// (`None` when unlimited or unknown).
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    // Unlimited already: nothing to raise.
    let current = limit.current?;
    match limit.maximum {
        Some(maximum) if maximum > current => {
            let raised = rustix::process::Rlimit {
                current: Some(maximum),
                maximum: Some(maximum),
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => {
                    tracing::info!(from = current, to = maximum, "raised the open-file limit");
                    Some(maximum)
                }
                Err(error) => {
                    tracing::warn!(limit = current, %error, "cannot raise the open-file limit");
                    Some(current)
                }
            }
        }
        Some(_) => Some(current),
        None => {
            let raised = rustix::process::Rlimit {
                current: None,
                maximum: None,
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => {
                    tracing::info!(from = current, "raised the open-file limit (unlimited)");
                    None
                }
                Err(error) => {
                    tracing::warn!(limit = current, %error, "cannot raise the open-file limit");
                    Some(current)
                }
            }
        }
    }
}

/// The connection limit when none is configured: what the open-file limit
/// leaves after the reserve, and at most a million.
fn default_max_connections(open_files: Option<u64>) -> usize {
    let Some(open_files) = open_files else {
        return 1_000_000;
    };
    usize::try_from(
        open_files
            .saturating_sub(RESERVED_FILES)
            .clamp(64, 1_000_000),
    )
    .unwrap_or(1_000_000)
}

/// How many sessions one sweep expires at most; the next sweep takes the rest.
const SWEEP_BATCH: u32 = 500;

/// Closes expired and idle sessions every `interval` until `stopping`, and
/// deletes stream tickets past their minute. Each session ends once, whichever
/// replica sweeps it first.
async fn sweep(tandem: Tandem, interval: Duration, stopping: CancellationToken) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = stopping.cancelled() => return,
        }
        match tandem.expire_due_sessions(SWEEP_BATCH).await {
            Ok(0) => {}
            Ok(ended) => tracing::info!(ended, "expired sessions closed"),
            Err(error) => tracing::warn!(%error, "sweeping expired sessions failed"),
        }
        if let Err(error) = tandem.purge_stream_tickets().await {
            tracing::warn!(%error, "purging expired stream tickets failed");
        }
    }
}
