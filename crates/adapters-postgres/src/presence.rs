//! Which agent-lease holders are alive, for Postgres: those with a connection.
//!
//! Each declared holder keeps a connection of its own whose `application_name`
//! is the holder's name, and pings it every second (reconnecting if it is
//! lost). A lease whose holder has no such connection in `pg_stat_activity` is
//! free: the process that held it is gone (Postgres ends a backend as soon as
//! its client's socket closes, which the kernel does for a killed process), so
//! its own restart, or any other replica, takes its sessions over at once
//! instead of waiting for the lease to expire. A replica cut off from the
//! database keeps its connection's backend alive on the server until TCP gives
//! up, and its leases then expire as before.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tandem_ports::{StoreError, is_valid_lease_holder};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How often a holder's connection is checked, and retried once lost.
const PING_EVERY: Duration = Duration::from_secs(1);

/// The SQL condition "the holder in `column` has a connection": the lease is
/// held by a live process.
pub(crate) fn holder_alive(column: &str) -> String {
    format!("EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = {column})")
}

/// The connections of the holders declared through one store.
#[derive(Debug, Clone, Default)]
pub(crate) struct Presence(Arc<Mutex<Vec<Holder>>>);

#[derive(Debug)]
struct Holder {
    name: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Presence {
    /// Opens `holder`'s connection and keeps it until `close`.
    pub(crate) async fn register(&self, pool: &PgPool, holder: &str) -> Result<(), StoreError> {
        if !is_valid_lease_holder(holder) {
            return Err(StoreError::backend(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{holder:?} is not a valid lease holder name"),
            )));
        }
        if self.holders().iter().any(|known| known.name == holder) {
            return Ok(());
        }
        let options = pool
            .connect_options()
            .as_ref()
            .clone()
            .application_name(holder);
        let connection = PgConnection::connect_with(&options)
            .await
            .map_err(StoreError::backend)?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(keep(options, holder.to_owned(), connection, stopped));
        self.holders().push(Holder {
            name: holder.to_owned(),
            stop,
            task,
        });
        Ok(())
    }

    /// Closes every holder's connection: its leases are free from now on.
    pub(crate) async fn close(&self) {
        let holders = std::mem::take(&mut *self.holders());
        for holder in holders {
            let _ = holder.stop.send(());
            let _ = holder.task.await;
        }
    }

    fn holders(&self) -> std::sync::MutexGuard<'_, Vec<Holder>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Keeps `holder`'s connection open, pinging it, reconnecting when it is lost,
/// until `stopped`; then closes it.
async fn keep(
    options: PgConnectOptions,
    holder: String,
    connection: PgConnection,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut connection = Some(connection);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            () = tokio::time::sleep(PING_EVERY) => {}
        }
        let checked = tokio::select! {
            _ = &mut stopped => break,
            checked = check(&options, &holder, connection.take()) => checked,
        };
        connection = checked;
    }
    if let Some(open) = connection
        && let Err(error) = open.close().await
    {
        tracing::debug!(%holder, %error, "closing the lease holder's connection failed");
    }
}

/// Pings `connection`, or opens a new one if there is none; the connection
/// that is open afterwards.
async fn check(
    options: &PgConnectOptions,
    holder: &str,
    connection: Option<PgConnection>,
) -> Option<PgConnection> {
    if let Some(mut open) = connection {
        match sqlx::query("SELECT 1").execute(&mut open).await {
            Ok(_) => return Some(open),
            Err(error) => {
                tracing::warn!(%holder, %error, "the lease holder's connection was lost; reconnecting");
            }
        }
    }
    match PgConnection::connect_with(options).await {
        Ok(open) => {
            tracing::info!(%holder, "the lease holder's connection is back");
            Some(open)
        }
        Err(error) => {
            tracing::warn!(%holder, %error, "cannot reconnect the lease holder's connection; retrying");
            None
        }
    }
}
