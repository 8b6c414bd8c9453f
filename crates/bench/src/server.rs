//! Starts and stops the `tandem` server under test: a child process on a free
//! loopback port, over a fresh SQLite file or a fresh PostgreSQL database, with
//! rate limits off (the benchmark writes far faster than people do).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::Connection;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::api::Api;

/// How long a server may take to become ready.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// How long a server may take to stop after SIGTERM.
const STOP_WITHIN: Duration = Duration::from_secs(30);

/// The database a server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "Postgres",
        }
    }
}

/// Starts servers: which binary, and which PostgreSQL server to make databases on.
#[derive(Debug, Clone)]
pub(crate) struct Launcher {
    pub(crate) binary: PathBuf,
    /// `postgres://user@host:port`, without a database; `None`: no Postgres runs.
    pub(crate) postgres: Option<String>,
}

/// A running server.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) api: Api,
    pub(crate) addr: SocketAddr,
    pub(crate) admin: String,
    /// From spawning the process to the first `200` from `/readyz`.
    pub(crate) ready_after: Duration,
    child: Child,
    dir: TempDir,
    database: Option<PostgresDatabase>,
}

/// A database the benchmark created for one server, dropped when it stops.
#[derive(Debug)]
struct PostgresDatabase {
    server: String,
    name: String,
}

impl Launcher {
    /// Starts a server on a fresh database of `backend`.
    pub(crate) async fn start(&self, backend: Backend) -> anyhow::Result<Server> {
        let dir = tempfile::tempdir().context("cannot make a temporary directory")?;
        match backend {
            Backend::Sqlite => {
                let url = sqlite_url(dir.path());
                self.start_on(url, dir, None).await
            }
            Backend::Postgres => {
                let server = self
                    .postgres
                    .clone()
                    .context("no PostgreSQL server to run on (--postgres)")?;
                let database = PostgresDatabase::create(server).await?;
                let url = database.url();
                self.start_on(url, dir, Some(database)).await
            }
        }
    }

    /// Starts a server on the SQLite file in `dir` (kept: it may already exist).
    pub(crate) async fn start_in(&self, dir: TempDir) -> anyhow::Result<Server> {
        let url = sqlite_url(dir.path());
        self.start_on(url, dir, None).await
    }

    async fn start_on(
        &self,
        database_url: String,
        dir: TempDir,
        database: Option<PostgresDatabase>,
    ) -> anyhow::Result<Server> {
        let addr = free_port()?;
        let admin = "tandem-bench-admin-key-0123456789abcdef0123456789".to_owned();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("server.log"))
            .context("cannot open the server log")?;
        let began = Instant::now();
        let mut child = Command::new(&self.binary)
            .arg("serve")
            .current_dir(dir.path())
            .env("TANDEM_LISTEN", addr.to_string())
            .env("DATABASE_URL", &database_url)
            .env("TANDEM_BOOTSTRAP_ADMIN_KEY", &admin)
            .env("TANDEM_RATE_LIMIT_PER_MINUTE", "0")
            .env("RUST_LOG", "warn")
            .env_remove("TANDEM_CONFIG")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", self.binary.display()))?;
        loop {
            if ready(addr).await {
                break;
            }
            if let Some(status) = child.try_wait()? {
                bail!(
                    "the server exited ({status}) before it was ready:\n{}",
                    tail(&dir.path().join("server.log"))
                );
            }
            if began.elapsed() > READY_WITHIN {
                bail!("the server was not ready within {READY_WITHIN:?}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let ready_after = began.elapsed();
        Ok(Server {
            api: Api::new(&format!("http://{addr}"))?,
            addr,
            admin,
            ready_after,
            child,
            dir,
            database,
        })
    }
}

impl Server {
    /// The server's resident memory, in KiB.
    pub(crate) fn rss_kib(&self) -> anyhow::Result<u64> {
        let pid = self.child.id().context("the server has exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .context("cannot read the server's /proc status")?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS in the server's /proc status")
    }

    /// The URL of the server's PostgreSQL database; `None` on SQLite.
    pub(crate) fn postgres_url(&self) -> Option<String> {
        self.database.as_ref().map(PostgresDatabase::url)
    }

    /// Stops the server with SIGTERM (as an orchestrator would) and keeps its
    /// database directory for a restart.
    pub(crate) async fn stop_keeping(mut self) -> anyhow::Result<TempDir> {
        self.terminate().await?;
        if let Some(database) = self.database.take() {
            database.drop_it().await;
        }
        Ok(self.dir)
    }

    /// Stops the server and removes its database.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        self.stop_keeping().await.map(drop)
    }

    async fn terminate(&mut self) -> anyhow::Result<()> {
        if let Some(pid) = self
            .child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        if let Ok(status) = tokio::time::timeout(STOP_WITHIN, self.child.wait()).await {
            let status = status?;
            if !status.success() {
                eprintln!(
                    "warning: the server exited with {status}:\n{}",
                    tail(&self.dir.path().join("server.log"))
                );
            }
        } else {
            eprintln!("warning: the server did not stop within {STOP_WITHIN:?}; killing it");
            self.child.kill().await?;
        }
        Ok(())
    }
}

impl PostgresDatabase {
    async fn create(server: String) -> anyhow::Result<Self> {
        let name = format!(
            "tandem_bench_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_micros())
        );
        let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
            .await
            .with_context(|| format!("cannot connect to PostgreSQL at {server}"))?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .with_context(|| format!("cannot create the database {name}"))?;
        Ok(Self { server, name })
    }

    /// The server's database URL. Without TLS: the server and PostgreSQL talk
    /// over loopback here, as they would over a private network or a socket.
    fn url(&self) -> String {
        format!("{}/{}?sslmode=disable", self.server, self.name)
    }

    async fn drop_it(self) {
        let dropped = async {
            let mut admin =
                sqlx::PgConnection::connect(&format!("{}/postgres", self.server)).await?;
            sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin)
            .await
        };
        if let Err(error) = dropped.await {
            eprintln!("warning: cannot drop the database {}: {error}", self.name);
        }
    }
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("tandem.db").display())
}

/// A loopback port nobody listens on right now.
fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?)
}

/// Whether `GET /readyz` answers 200: a bare request, so that polling costs the
/// start-up measurement nothing.
async fn ready(addr: SocketAddr) -> bool {
    let probe = async {
        let mut socket = tokio::net::TcpStream::connect(addr).await?;
        socket
            .write_all(b"GET /readyz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            .await?;
        let mut head = [0u8; 12];
        socket.read_exact(&mut head).await?;
        Ok::<_, std::io::Error>(&head == b"HTTP/1.1 200")
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), probe).await,
        Ok(Ok(true))
    )
}

/// The last lines of a log file.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
