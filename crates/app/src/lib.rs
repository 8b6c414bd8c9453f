//! `tandem`, the server: configuration, the wiring of every adapter, start-up and
//! graceful shutdown. This is the only crate that knows every concrete type.

pub mod config;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tandem_ports::{Clock, EventBus, SessionStore, SystemClock};
use tandem_postgres::{PostgresEventBus, PostgresStore};
use tandem_service::{CreatedApiKey, LocalEventBus, ServiceConfig, Tandem};
use tandem_sqlite::SqliteStore;
use tokio::net::TcpListener;

pub use config::{Config, LogFormat};

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
        ..ServiceConfig::default()
    };
    Ok(Tandem::new(store, bus, clock, service_config))
}

/// A server ready to serve: store open and migrated, admin key bootstrapped,
/// listener bound.
#[derive(Debug)]
pub struct Server {
    tandem: Tandem,
    router: axum::Router,
    streams: tandem_http::StreamCloser,
    listener: TcpListener,
    bootstrapped: Option<CreatedApiKey>,
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
    let tandem = service(&config, clock).await?;
    let bootstrapped = tandem
        .bootstrap_admin_key(config.bootstrap_admin_key.clone())
        .await
        .context("cannot bootstrap the admin API key")?;
    let http = tandem_http::HttpConfig {
        public_url: config.public_url.trim_end_matches('/').to_owned(),
        cors_origins: config.cors_origins.clone(),
        body_limit_bytes: config.body_limit_bytes,
    };
    let (router, streams) = tandem_http::router_with_closer(tandem.clone(), http);
    Ok(Server {
        tandem,
        router,
        streams,
        listener,
        bootstrapped,
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

    /// Serves until `shutdown` completes, then stops accepting, ends the open
    /// event streams (their clients resume elsewhere with `Last-Event-ID`) and lets
    /// in-flight requests finish.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let streams = self.streams;
        let shutdown = async move {
            shutdown.await;
            streams.close_all();
        };
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("the HTTP server failed")
    }
}
