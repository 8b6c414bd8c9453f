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
use tandem_domain::{AgentProfileName, ApiKeyName, Scope, Ttl, WorkspaceId};
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
    /// Let webhooks go to plain `http://` URLs (only `https://` by default).
    #[arg(long, env = "TANDEM_WEBHOOK_ALLOW_HTTP", global = true)]
    webhook_allow_http: bool,
    /// Networks webhooks may reach although they are not public (loopback,
    /// private, ...), comma-separated: e.g. `127.0.0.0/8,10.1.0.0/16`.
    #[arg(
        long,
        env = "TANDEM_WEBHOOK_ALLOWED_NETWORKS",
        value_delimiter = ',',
        global = true
    )]
    webhook_allowed_networks: Vec<String>,
    /// Seconds a webhook request may take, answer included.
    #[arg(
        long,
        env = "TANDEM_WEBHOOK_TIMEOUT_SECS",
        default_value_t = 15,
        global = true
    )]
    webhook_timeout_secs: u64,
    /// The wait before a failed webhook delivery is first retried; it doubles
    /// after each attempt, up to `--webhook-retry-max`.
    #[arg(
        long,
        env = "TANDEM_WEBHOOK_RETRY_FIRST",
        default_value = "5s",
        global = true
    )]
    webhook_retry_first: String,
    /// The longest wait between two attempts of a webhook delivery.
    #[arg(
        long,
        env = "TANDEM_WEBHOOK_RETRY_MAX",
        default_value = "1h",
        global = true
    )]
    webhook_retry_max: String,
    /// How long a failing webhook delivery is retried before it is given up and
    /// its webhook disabled.
    #[arg(
        long,
        env = "TANDEM_WEBHOOK_RETRY_FOR",
        default_value = "24h",
        global = true
    )]
    webhook_retry_for: String,
    /// Seconds a replica's lease on delivering to a webhook lasts; a replica that
    /// dies holds its webhooks this long at most. At least twice the timeout.
    #[arg(
        long,
        env = "TANDEM_WEBHOOK_LEASE_SECS",
        default_value_t = 60,
        global = true
    )]
    webhook_lease_secs: u64,
    /// How long a webhook's previous secret keeps signing beside a rotated one.
    #[arg(
        long,
        env = "TANDEM_WEBHOOK_SECRET_GRACE",
        default_value = "24h",
        global = true
    )]
    webhook_secret_grace: String,
    /// Seconds a connection may take to send a request's head: its first from
    /// its opening, the next ones from their first byte; slower connections are
    /// closed [default: 10].
    #[arg(long, env = "TANDEM_HTTP_HEADER_TIMEOUT_SECS", global = true)]
    http_header_timeout_secs: Option<u64>,
    /// Seconds a kept-alive connection may stay silent between requests; keep it
    /// above the idle timeout of a load balancer in front [default: 75].
    #[arg(long, env = "TANDEM_HTTP_KEEP_ALIVE_SECS", global = true)]
    http_keep_alive_secs: Option<u64>,
    /// Seconds a request's body may take to arrive after its head (then 408)
    /// [default: 30].
    #[arg(long, env = "TANDEM_HTTP_BODY_TIMEOUT_SECS", global = true)]
    http_body_timeout_secs: Option<u64>,
    /// Connections open at once at most; more wait until one closes
    /// [default: what the open-file limit leaves].
    #[arg(long, env = "TANDEM_HTTP_MAX_CONNECTIONS", global = true)]
    http_max_connections: Option<usize>,
    /// The longest request URI (path and query) accepted, in bytes (then 414)
    /// [default: 8192].
    #[arg(long, env = "TANDEM_HTTP_MAX_URI_BYTES", global = true)]
    http_max_uri_bytes: Option<usize>,
    /// The most bytes of header lines a request may have (then 431) [default: 16384].
    #[arg(long, env = "TANDEM_HTTP_MAX_HEADER_BYTES", global = true)]
    http_max_header_bytes: Option<usize>,
    /// The most header lines a request may have (then 431) [default: 100].
    #[arg(long, env = "TANDEM_HTTP_MAX_HEADERS", global = true)]
    http_max_headers: Option<usize>,
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
    EchoAgent {
        /// Offer authentication methods and refuse sessions until one is used.
        #[arg(long)]
        require_auth: bool,
        /// Do not offer `session/load`.
        #[arg(long)]
        no_load_session: bool,
        /// Where sessions are saved for `session/load`.
        #[arg(long)]
        state_dir: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ApiKeyCommand {
    /// Create an API key and print its secret (shown once).
    Create {
        /// The workspace the key belongs to.
        #[arg(long, default_value = "default")]
        workspace: String,
        /// Scopes: sessions:read, sessions:write, webhooks:read, webhooks:write, admin
        /// (repeatable).
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
        self.webhooks(&mut config.webhooks)?;
        if let Some(path) = &self.config {
            FileConfig::load(path)?.apply(&mut config)?;
        }
        // Flags and the environment win over the file.
        let connections = &mut config.connections;
        if let Some(secs) = self.http_header_timeout_secs {
            connections.header_timeout = Duration::from_secs(secs);
        }
        if let Some(secs) = self.http_keep_alive_secs {
            connections.keep_alive_timeout = Duration::from_secs(secs);
        }
        if let Some(secs) = self.http_body_timeout_secs {
            connections.body_timeout = Duration::from_secs(secs);
        }
        if let Some(max) = self.http_max_connections {
            connections.max_connections = Some(max);
        }
        connections.max_uri_bytes = self.http_max_uri_bytes.unwrap_or(connections.max_uri_bytes);
        connections.max_header_bytes = self
            .http_max_header_bytes
            .unwrap_or(connections.max_header_bytes);
        connections.max_headers = self.http_max_headers.unwrap_or(connections.max_headers);
        if let Some(name) = &self.default_agent {
            config.default_agent = AgentProfileName::parse(name)
                .map_err(|e| anyhow::anyhow!("TANDEM_DEFAULT_AGENT / --default-agent: {e}"))?;
        }
        config.validate()?;
        Ok(config)
    }
}

impl Settings {
    /// The webhook settings of the flags and environment.
    fn webhooks(&self, webhooks: &mut tandem::WebhookSettings) -> anyhow::Result<()> {
        let duration = |name: &str, raw: &str| -> anyhow::Result<Duration> {
            let ttl = Ttl::parse(raw).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
            Ok(Duration::from_secs(u64::from(ttl.as_secs())))
        };
        let outbound = &mut webhooks.outbound;
        outbound.allow_http = self.webhook_allow_http;
        outbound.allowed_networks = self
            .webhook_allowed_networks
            .iter()
            .filter(|network| !network.trim().is_empty())
            .map(|network| {
                network.trim().parse().map_err(|e| {
                    anyhow::anyhow!(
                        "TANDEM_WEBHOOK_ALLOWED_NETWORKS: {network:?} is not a network such as 10.0.0.0/8 ({e})"
                    )
                })
            })
            .collect::<anyhow::Result<_>>()?;
        outbound.timeout = Duration::from_secs(self.webhook_timeout_secs);
        let retry = &mut webhooks.delivery.retry;
        retry.first_delay = duration("TANDEM_WEBHOOK_RETRY_FIRST", &self.webhook_retry_first)?;
        retry.max_delay = duration("TANDEM_WEBHOOK_RETRY_MAX", &self.webhook_retry_max)?;
        retry.give_up_after = duration("TANDEM_WEBHOOK_RETRY_FOR", &self.webhook_retry_for)?;
        webhooks.delivery.secret_grace =
            duration("TANDEM_WEBHOOK_SECRET_GRACE", &self.webhook_secret_grace)?;
        webhooks.delivery.lease_ttl = Duration::from_secs(self.webhook_lease_secs);
        Ok(())
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
        Command::EchoAgent {
            require_auth,
            no_load_session,
            state_dir,
        } => {
            let defaults = tandem_agent::echo_agent::EchoOptions::default();
            let options = tandem_agent::echo_agent::EchoOptions {
                require_auth,
                load_session: !no_load_session,
                state_dir: state_dir.unwrap_or(defaults.state_dir),
            };
            tandem_agent::echo_agent::serve_stdio(options)
                .await
                .map_err(|error| anyhow::anyhow!("the echo agent failed: {error}"))
        }
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
            let listener = tandem::listen(config.listen)
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
            // Printed, not logged: where a person goes next.
            println!(
                "\nTandem is ready. Open the web app: {}/\n",
                config.public_url.trim_end_matches('/')
            );
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
