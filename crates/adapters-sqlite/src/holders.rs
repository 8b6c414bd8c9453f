//! Which agent-lease holders are alive, for SQLite: the ones this store declared.
//!
//! SQLite is embedded: the one server process that runs prompts on a database
//! file holds an exclusive lock on `<file>.lock` (taken when it declares its
//! first lease holder, released when the store closes or the process ends), so
//! every lease held by anyone else is a leftover of a process that died. A
//! restarted server therefore takes over its predecessor's sessions at once,
//! instead of waiting for their leases to expire.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tandem_ports::{StoreError, is_valid_lease_holder};

/// The lease holders declared through one store, and the file lock that makes
/// this process the only one running prompts on the database.
#[derive(Debug, Clone, Default)]
pub(crate) struct Holders(Arc<Mutex<State>>);

#[derive(Debug, Default)]
struct State {
    names: Vec<String>,
    /// Held while `names` is not empty (none for a database not in a file).
    lock: Option<File>,
}

impl Holders {
    /// Declares `holder` alive; the first declaration takes the lock next to
    /// `database` (a file path; `None` for a database in memory).
    pub(crate) fn register(&self, holder: &str, database: Option<&Path>) -> Result<(), StoreError> {
        if !is_valid_lease_holder(holder) {
            return Err(StoreError::backend(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{holder:?} is not a valid lease holder name"),
            )));
        }
        let mut state = self.state();
        if state.lock.is_none()
            && let Some(database) = database
        {
            state.lock = Some(lock(database)?);
        }
        if !state.names.iter().any(|name| name == holder) {
            state.names.push(holder.to_owned());
        }
        Ok(())
    }

    /// The declared holders as a JSON array, for `json_each` in a query.
    pub(crate) fn json(&self) -> String {
        serde_json::Value::from(self.state().names.clone()).to_string()
    }

    /// Forgets every holder and gives the lock up (the store is closing).
    pub(crate) fn clear(&self) {
        let mut state = self.state();
        state.names.clear();
        state.lock = None;
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The lock file of the database at `database`.
pub(crate) fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the exclusive lock of `database`'s lock file, without waiting.
fn lock(database: &Path) -> Result<File, StoreError> {
    let path = lock_path(database);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|error| {
            StoreError::backend(std::io::Error::new(
                error.kind(),
                format!("cannot open the lock file {}: {error}", path.display()),
            ))
        })?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(StoreError::backend(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!(
                "another tandem server runs prompts on this SQLite database ({} is locked); \
                 SQLite serves one server process, use PostgreSQL for several replicas",
                path.display()
            ),
        ))),
        Err(error) => {
            // A file system without locks: the guarantee is the operator's.
            tracing::warn!(
                path = %path.display(),
                %error,
                "cannot lock the SQLite database for this process; run one server on it at a time"
            );
            Ok(file)
        }
    }
}
