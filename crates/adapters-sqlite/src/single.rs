//! The one-trip write. A change whose writes are all plain inserts (a comment, a
//! prompt) and which emits events — the changes people and agents make most —
//! goes to the writer connection's thread as one batch of statements, BEGIN to
//! COMMIT (or, in a group commit, SAVEPOINT to RELEASE), instead of one trip per
//! statement (each trip is a hand-over to that thread and back). The guarantees
//! are those of `write::apply`.
//!
//! Every event's seq is computed from the session row under the same conditions
//! the session update checks (active, and the lease for a runner's change): when
//! they fail, the seq is NULL, the insert is refused, and the batch stops before
//! COMMIT; the transaction is then rolled back and the reason looked up.

use std::fmt::Write as _;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments, Sqlite, SqliteConnection};
use tandem_domain::{Comment, Event, Prompt, Seq};
use tandem_ports::{Change, StoreError, Write};

use crate::map_err;
use crate::time::{micros, opt_micros};

/// Whether `change` can be written this way.
pub(crate) fn fits(change: &Change) -> bool {
    !change.events.is_empty() && change.writes.iter().all(|write| insert(write).is_some())
}

/// The plain inserts this way writes.
enum Insert<'a> {
    Comment(&'a Comment),
    Prompt(&'a Prompt),
}

fn insert(write: &Write) -> Option<Insert<'_>> {
    match write {
        Write::InsertComment(comment) => Some(Insert::Comment(comment)),
        Write::InsertPrompt(prompt) => Some(Insert::Prompt(prompt)),
        Write::InsertSession(_)
        | Write::UpdateSession(_)
        | Write::InsertParticipant { .. }
        | Write::UpdateParticipant(_)
        | Write::InsertInvite { .. }
        | Write::UpdateInvite(_)
        | Write::RedeemInvite(_)
        | Write::UpdatePrompt(_)
        | Write::InsertPermissionRequest(_)
        | Write::UpdatePermissionRequest(_)
        | Write::InsertAgentState(_)
        | Write::UpdateAgentState(_) => None,
    }
}

/// A batch of statements and their arguments, numbered as they are added.
struct Batch<'q> {
    sql: String,
    args: SqliteArguments<'q>,
    count: usize,
}

impl<'q> Batch<'q> {
    /// Binds `value` and returns its placeholder (`?n`).
    fn arg<T>(&mut self, value: T) -> Result<String, StoreError>
    where
        T: 'q + sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite>,
    {
        self.args.add(value).map_err(StoreError::Backend)?;
        self.count += 1;
        Ok(format!("?{}", self.count))
    }
}

/// How a batch is bracketed: its own transaction, or a savepoint inside a group
/// commit's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bracket {
    Transaction,
    Savepoint,
}

impl Bracket {
    const fn open(self) -> &'static str {
        match self {
            Self::Transaction => "BEGIN IMMEDIATE;",
            Self::Savepoint => "SAVEPOINT change;",
        }
    }

    const fn close(self) -> &'static str {
        match self {
            Self::Transaction => "; COMMIT;",
            Self::Savepoint => "; RELEASE change;",
        }
    }

    /// What undoes a batch that stopped half-way.
    const fn undo(self) -> &'static str {
        match self {
            Self::Transaction => "ROLLBACK",
            Self::Savepoint => "ROLLBACK TO change; RELEASE change",
        }
    }
}

/// How a one-trip write failed.
#[derive(Debug)]
pub(crate) enum Failed {
    /// Refused or failed, and undone: the connection is as it was before.
    Undone(StoreError),
    /// Failed, and could not be undone (SQLite may already have rolled back the
    /// whole transaction, e.g. on a full disk): the connection's transaction
    /// state is unknown, so it is closed rather than given back to the pool.
    Broken(StoreError),
}

impl Failed {
    pub(crate) fn into_error(self) -> StoreError {
        match self {
            Self::Undone(error) | Self::Broken(error) => error,
        }
    }
}

impl From<StoreError> for Failed {
    fn from(error: StoreError) -> Self {
        Self::Undone(error)
    }
}

/// Writes `change` in one trip to the writer thread (two when it is refused),
/// bracketed as asked: with `Savepoint`, the caller's transaction must be open
/// and nothing is durable before the caller commits it.
pub(crate) async fn apply(
    conn: &mut PoolConnection<Sqlite>,
    change: &Change,
    bracket: Bracket,
) -> Result<Vec<Event>, Failed> {
    change.ensure_single_session()?;
    let count = i64::try_from(change.events.len()).map_err(StoreError::backend)?;
    let mut q = Batch {
        sql: String::with_capacity(1024),
        args: SqliteArguments::default(),
        count: 0,
    };
    let session = q.arg(change.session_id.as_uuid())?;
    let added = q.arg(count)?;
    let activity = q.arg(opt_micros(change.activity_at))?;
    let mut condition = format!("id = {session} AND status = 'active'");
    if let Some(holder) = &change.lease_holder {
        let holder = q.arg(holder.as_str())?;
        let _ = write!(
            condition,
            " AND EXISTS (SELECT 1 FROM agent_leases WHERE session_id = {session} AND holder = {holder})"
        );
    }
    let _ = write!(
        q.sql,
        "{open}
         UPDATE sessions
            SET last_seq = last_seq + {added},
                last_activity_at = MAX(last_activity_at, COALESCE({activity}, last_activity_at))
          WHERE {condition}
      RETURNING last_seq;",
        open = bracket.open()
    );
    for write in &change.writes {
        match insert(write) {
            Some(Insert::Comment(comment)) => insert_comment(&mut q, comment)?,
            Some(Insert::Prompt(prompt)) => insert_prompt(&mut q, prompt)?,
            None => {
                return Err(Failed::Undone(StoreError::Backend(
                    format!("{write:?} is not a one-trip write").into(),
                )));
            }
        }
    }
    q.sql.push_str(
        "INSERT INTO events (session_id, seq, type, actor_kind, actor_id, data, created_at) VALUES ",
    );
    for (k, event) in (1..).zip(&change.events) {
        let row = [
            session.clone(),
            format!("(SELECT last_seq FROM sessions WHERE {condition}) - {added} + {k}"),
            q.arg(event.payload.event_type())?,
            q.arg(event.actor.kind())?,
            q.arg(event.actor.id())?,
            q.arg(sqlx::types::Json(event.payload.data()))?,
            q.arg(micros(event.at))?,
        ]
        .join(", ");
        if k > 1 {
            q.sql.push_str(", ");
        }
        let _ = write!(q.sql, "({row})");
    }
    q.sql.push_str(bracket.close());

    // All of it: the batch runs statement by statement as its results are read.
    let written: Result<Vec<i64>, _> = sqlx::query_scalar_with(&q.sql, q.args)
        .fetch_all(&mut **conn)
        .await;
    let last_seq = match written.map(|rows| rows.first().copied()) {
        Ok(Some(last_seq)) => last_seq,
        Ok(None) => {
            // Cannot happen (the events' insert refuses first), but never leave a
            // transaction open on the writer.
            undo(conn, bracket).await?;
            return Err(Failed::Undone(StoreError::Backend(
                "the session row was not updated".into(),
            )));
        }
        Err(error) => {
            undo(conn, bracket).await?;
            return Err(Failed::Undone(why_refused(conn, change, error).await));
        }
    };
    let first = last_seq - count + 1;
    (first..)
        .zip(&change.events)
        .map(|(seq, event)| {
            Ok(Event {
                session_id: change.session_id,
                seq: Seq::new(u64::try_from(seq).map_err(StoreError::backend)?),
                at: event.at,
                actor: event.actor,
                payload: event.payload.clone(),
            })
        })
        .collect::<Result<_, StoreError>>()
        .map_err(Failed::Undone)
}

fn insert_comment(q: &mut Batch<'_>, c: &Comment) -> Result<(), StoreError> {
    let values = [
        q.arg(c.id.as_uuid())?,
        q.arg(c.session_id.as_uuid())?,
        q.arg(c.author.as_uuid())?,
        q.arg(c.text.as_str().to_owned())?,
        q.arg(micros(c.created_at))?,
    ]
    .join(", ");
    let _ = write!(
        q.sql,
        "INSERT INTO comments (id, session_id, author_participant_id, text, created_at)
         VALUES ({values});"
    );
    Ok(())
}

fn insert_prompt(q: &mut Batch<'_>, p: &Prompt) -> Result<(), StoreError> {
    let values = [
        q.arg(p.id.as_uuid())?,
        q.arg(p.session_id.as_uuid())?,
        q.arg(p.author.as_uuid())?,
        q.arg(p.text.as_str().to_owned())?,
        q.arg(p.status.as_str())?,
        q.arg(micros(p.created_at))?,
        q.arg(opt_micros(p.queued_at))?,
        q.arg(opt_micros(p.resolved_at))?,
        q.arg(p.resolved_by.map(|id| id.as_uuid()))?,
        q.arg(opt_micros(p.started_at))?,
        q.arg(opt_micros(p.finished_at))?,
        q.arg(p.stop_reason.map(tandem_domain::StopReason::as_str))?,
        q.arg(p.error.clone())?,
        q.arg(p.retry_of.map(|id| id.as_uuid()))?,
    ]
    .join(", ");
    let _ = write!(
        q.sql,
        "INSERT INTO prompts (id, session_id, author_participant_id, text, status, created_at,
                              queued_at, resolved_at, resolved_by, started_at, finished_at,
                              stop_reason, error, retry_of)
         VALUES ({values});"
    );
    Ok(())
}

/// Undoes what a batch that stopped half-way wrote (its transaction, or its
/// savepoint), if it got as far as opening it. A writer that cannot tell is
/// closed rather than given back to the pool mid-transaction.
async fn undo(conn: &mut PoolConnection<Sqlite>, bracket: Bracket) -> Result<(), Failed> {
    match sqlx::raw_sql(bracket.undo()).execute(&mut **conn).await {
        Ok(_) => Ok(()),
        Err(error)
            if bracket == Bracket::Transaction
                && error.to_string().contains("no transaction is active") =>
        {
            Ok(())
        }
        Err(error) => {
            conn.close_on_drop();
            Err(Failed::Broken(map_err(error)))
        }
    }
}

/// Why a batch failed: the session is gone or ended, the lease is someone
/// else's, or (the session being fine) the insert itself was refused.
async fn why_refused(
    conn: &mut SqliteConnection,
    change: &Change,
    error: sqlx::Error,
) -> StoreError {
    let found: Result<Option<(String, Option<String>)>, _> = sqlx::query_as(
        "SELECT status, (SELECT holder FROM agent_leases WHERE session_id = ?1)
           FROM sessions WHERE id = ?1",
    )
    .bind(change.session_id.as_uuid())
    .fetch_optional(&mut *conn)
    .await;
    match found {
        Err(lookup) => map_err(lookup),
        Ok(None) => StoreError::NotFound,
        Ok(Some((status, _))) if status != "active" => StoreError::SessionInactive,
        Ok(Some((_, holder))) if change.lease_holder.is_some() && holder != change.lease_holder => {
            StoreError::LeaseLost
        }
        Ok(Some(_)) => map_err(error),
    }
}
