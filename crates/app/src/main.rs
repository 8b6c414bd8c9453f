//! The `tandem` command line: `serve` (the default), `migrate`, `api-key create`,
//! `openapi`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tandem::config::FileConfig;
use tandem::{Config, LogFormat};
use tandem_domain::{ApiKeyName, Scope, WorkspaceId};
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
    /// The server's URL as clients reach it, for invite links [default: `http://LISTEN`].
    #[arg(long, env = "TANDEM_PUBLIC_URL", global = true)]
    public_url: Option<String>,
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
        if let Some(url) = &self.public_url {
            config.public_url.clone_from(url);
        }
        config.bootstrap_admin_key = std::env::var("TANDEM_BOOTSTRAP_ADMIN_KEY")
            .ok()
            .filter(|key| !key.is_empty());
        if let Some(path) = &self.config {
            FileConfig::load(path)?.apply(&mut config);
        }
        config.validate()?;
        Ok(config)
    }
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=info"));
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
