//! The `tandem` command line: `serve` (the default), `migrate`, `api-key create`,
//! `openapi`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tandem::config::FileConfig;
use tandem::{Config, LogFormat};
use tandem_domain::{AgentProfileName, ApiKeyName, Scope, WorkspaceId};
use tandem_ports::SystemClock;

/// Share a live AI coding-agent session with your team.
#[derive(Debug, Parser)]
#[command(name = "tandem", version, about)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Settings every command shares.
#[derive(Debug, clap::Args)]
struct Settings {
    /// Address to listen on.
    #[arg(
        long,
        env = "TANDEM_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    listen: SocketAddr,
    /// Database: `sqlite://FILE` (embedded, created if missing) or `postgres://USER@HOST/DB`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://tandem.db",
        global = true,
        hide_env_values = true
    )]
    database_url: String,
    /// Connections to PostgreSQL this server keeps at most (SQLite ignores it).
    #[arg(
        long,
        env = "TANDEM_DATABASE_MAX_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    database_max_connections: u32,
    /// The server's URL as clients reach it, for invite links [default: `http://LISTEN`].
    #[arg(long, env = "TANDEM_PUBLIC_URL", global = true)]
    public_url: Option<String>,
    /// Writes (POST, PATCH, PUT, DELETE) each API key, participant or client
    /// address may send per minute; 0 turns rate limiting off.
    #[arg(
        long,
        env = "TANDEM_RATE_LIMIT_PER_MINUTE",
        default_value_t = tandem_http::RateLimit::DEFAULT.per_minute.get(),
        global = true
    )]
    rate_limit_per_minute: u32,
    /// Writes a caller may send at once before the per-minute pace applies.
    #[arg(
        long,
        env = "TANDEM_RATE_LIMIT_BURST",
        default_value_t = tandem_http::RateLimit::DEFAULT.burst.get(),
        global = true
    )]
    rate_limit_burst: u32,
    /// A TOML file with further settings ([limits], [http]).
    #[arg(long, env = "TANDEM_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(
        long,
        env = "TANDEM_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,
    /// The agent profile of sessions created without one.
    #[arg(long, env = "TANDEM_DEFAULT_AGENT", global = true)]
    default_agent: Option<String>,
    /// Seconds the host has to answer an agent's permission request before it is rejected.
    #[arg(
        long,
        env = "TANDEM_PERMISSION_TIMEOUT_SECS",
        default_value_t = 300,
        global = true
    )]
    permission_timeout_secs: u64,
    /// Seconds between two sweeps for expired and idle sessions.
    #[arg(
        long,
        env = "TANDEM_SWEEP_INTERVAL_SECS",
        default_value_t = 15,
        global = true
    )]
    sweep_interval_secs: u64,
    /// Seconds a replica's lease on a session's agent lasts; a replica that dies
    /// holds its sessions' prompts this long at most.
    #[arg(
        long,
        env = "TANDEM_AGENT_LEASE_SECS",
        default_value_t = 30,
        global = true
    )]
    agent_lease_secs: u64,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Bring the database schema up to date, then exit.
    Migrate,
    /// Manage API keys directly in the database.
    #[command(subcommand)]
    ApiKey(ApiKeyCommand),
    /// Print the OpenAPI document.
    Openapi,
    /// Run the built-in echo agent on stdin/stdout (the `echo` agent profile).
    #[command(hide = true)]
    EchoAgent,
}

#[derive(Debug, Subcommand)]
enum ApiKeyCommand {
    /// Create an API key and print its secret (shown once).
    Create {
        /// The workspace the key belongs to.
        #[arg(long, default_value = "default")]
        workspace: String,
        /// Scopes: sessions:read, sessions:write, admin (repeatable).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// A name to recognise the key by.
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

impl Settings {
    fn config(&self) -> anyhow::Result<Config> {
        let mut config = Config::new(self.listen, self.database_url.clone());
        config.database_max_connections = self.database_max_connections;
        if let Some(url) = &self.public_url {
            config.public_url.clone_from(url);
        }
        config.rate_limit =
            tandem::config::rate_limit(self.rate_limit_per_minute, self.rate_limit_burst)?;
        config.bootstrap_admin_key = std::env::var("TANDEM_BOOTSTRAP_ADMIN_KEY")
            .ok()
            .filter(|key| !key.is_empty());
        config.permission_timeout = Duration::from_secs(self.permission_timeout_secs);
        config.sweep_interval = Duration::from_secs(self.sweep_interval_secs);
        config.runner.lease_ttl = Duration::from_secs(self.agent_lease_secs);
        if let Some(path) = &self.config {
            FileConfig::load(path)?.apply(&mut config)?;
        }
        if let Some(name) = &self.default_agent {
            config.default_agent = AgentProfileName::parse(name)
                .map_err(|e| anyhow::anyhow!("TANDEM_DEFAULT_AGENT / --default-agent: {e}"))?;
        }
        config.validate()?;
        Ok(config)
    }
}

fn init_logs(format: LogFormat) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=info"));
    // The agent protocol crate traces every message whole: agent output before
    // it is redacted, and prompt texts. Only an operator who names it gets that.
    let named = std::env::var("RUST_LOG").is_ok_and(|spec| spec.contains("agent_client_protocol"));
    if filter.max_level_hint() == Some(tracing_subscriber::filter::LevelFilter::TRACE)
        && !named
        && let Ok(directive) = "agent_client_protocol=debug".parse()
    {
        filter = filter.add_directive(directive);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::EchoAgent => tandem_agent::echo_agent::serve_stdio()
            .await
            .map_err(|error| anyhow::anyhow!("the echo agent failed: {error}")),
        Command::Openapi => {
            let document = tandem_http::openapi()
                .to_pretty_json()
                .context("cannot render the OpenAPI document")?;
            println!("{document}");
            Ok(())
        }
        Command::Migrate => {
            init_logs(cli.settings.log_format);
            let config = cli.settings.config()?;
            tandem::migrate(&config).await?;
            tracing::info!("the database schema is up to date");
            Ok(())
        }
        Command::ApiKey(ApiKeyCommand::Create {
            workspace,
            scopes,
            name,
        }) => {
            let config = cli.settings.config()?;
            let workspace =
                WorkspaceId::parse(&workspace).map_err(|e| anyhow::anyhow!("--workspace: {e}"))?;
            let scopes = scopes
                .iter()
                .map(|scope| {
                    scope
                        .parse::<Scope>()
                        .map_err(|e| anyhow::anyhow!("--scope: {e}"))
                })
                .collect::<anyhow::Result<BTreeSet<_>>>()?;
            let name = ApiKeyName::parse(&name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
            let tandem = tandem::service(&config, Arc::new(SystemClock)).await?;
            let created = tandem.issue_api_key(workspace, name, scopes).await?;
            println!("{}", created.secret.expose());
            eprintln!(
                "API key {} for workspace {} created; the secret above is shown only once.",
                created.key.id, created.key.workspace_id
            );
            Ok(())
        }
        Command::Serve => {
            init_logs(cli.settings.log_format);
            let config = cli.settings.config()?;
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            let server = tandem::build(config.clone(), listener).await?;
            if let Some(created) = server.bootstrapped_key() {
                if config.bootstrap_admin_key.is_none() {
                    // Printed, not logged: the one time this secret is shown.
                    println!(
                        "\nNo admin API key existed, so one was created for workspace `default`.\nAdmin API key (shown once, store it now):\n\n    {}\n",
                        created.secret.expose()
                    );
                } else {
                    tracing::info!(
                        "the admin API key from TANDEM_BOOTSTRAP_ADMIN_KEY was installed"
                    );
                }
            }
            tracing::info!(address = %server.local_addr()?, "tandem is ready");
            server.serve(shutdown_signal()).await?;
            tracing::info!("tandem stopped");
            Ok(())
        }
    }
}

/// Completes on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: no new connections, finishing requests in flight");
}
