//! The one-statement write. A change whose writes are all plain inserts (a
//! comment, a prompt) and which emits events — the changes people and agents
//! make most — is written by a single statement: data-modifying CTEs that bump
//! the session's `last_seq` (locking its row and checking that it is active),
//! insert the records and the events. One statement is atomic on its own, so
//! this takes one round trip instead of five (BEGIN, update, insert, insert,
//! COMMIT), with the same guarantees as `write::apply`.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgArguments;
use sqlx::{Arguments, PgPool};
use tandem_domain::{Comment, Event, Prompt, Seq};
use tandem_ports::{Change, StoreError, Write};

use crate::map_err;

/// Whether `change` can be written this way. A runner's change (made under its
/// lease) cannot: a condition on another table than the row the statement
/// updates is evaluated in the statement's snapshot, even after waiting for that
/// row's lock, so a lease taken over meanwhile could go unseen. `write::apply`
/// reads the lease afresh once it holds the session's lock.
pub(crate) fn fits(change: &Change) -> bool {
    change.lease_holder.is_none() && inserts_only(change)
}

/// Whether `change` emits events and writes nothing but plain inserts (whatever
/// its lease): the changes a group commit (`group`) writes together.
pub(crate) fn inserts_only(change: &Change) -> bool {
    !change.events.is_empty() && change.writes.iter().all(|write| insert(write).is_some())
}

/// The plain inserts this way writes.
pub(crate) enum Insert<'a> {
    Comment(&'a Comment),
    Prompt(&'a Prompt),
}

/// The plain insert `write` is, if it is one.
pub(crate) fn insert(write: &Write) -> Option<Insert<'_>> {
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

/// A statement and its arguments, numbered as they are added.
struct Statement {
    sql: String,
    args: PgArguments,
    count: usize,
}

impl Statement {
    fn new() -> Self {
        Self {
            sql: String::with_capacity(1024),
            args: PgArguments::default(),
            count: 0,
        }
    }

    /// Binds `value` and returns its placeholder (`$n`).
    fn arg<'q, T>(&mut self, value: T) -> Result<String, StoreError>
    where
        T: 'q + sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
    {
        self.args.add(value).map_err(StoreError::Backend)?;
        self.count += 1;
        Ok(format!("${}", self.count))
    }
}

/// Writes `change` in one statement; errors as `write::apply` gives them.
pub(crate) async fn apply(pool: &PgPool, change: &Change) -> Result<Vec<Event>, StoreError> {
    change.ensure_single_session()?;
    let count = i64::try_from(change.events.len()).map_err(StoreError::backend)?;
    let mut q = Statement::new();
    let session = q.arg(change.session_id.as_uuid())?;
    let added = q.arg(count)?;
    let activity = q.arg(change.activity_at)?;
    let _ = write!(
        q.sql,
        "WITH s AS (UPDATE sessions
                       SET last_seq = last_seq + {added},
                           last_activity_at = GREATEST(last_activity_at, COALESCE({activity}, last_activity_at))
                     WHERE id = {session} AND status = 'active'
                 RETURNING last_seq)"
    );
    for (n, write) in change.writes.iter().enumerate() {
        match insert(write) {
            Some(Insert::Comment(comment)) => insert_comment(&mut q, n, comment)?,
            Some(Insert::Prompt(prompt)) => insert_prompt(&mut q, n, prompt)?,
            None => {
                return Err(StoreError::Backend(
                    format!("{write:?} is not a one-statement write").into(),
                ));
            }
        }
    }
    insert_events(&mut q, change, &session, &added)?;
    q.sql.push_str(" SELECT last_seq FROM s");
    let last_seq: Option<i64> = sqlx::query_scalar_with(&q.sql, q.args)
        .fetch_optional(pool)
        .await
        .map_err(map_err)?;
    let Some(last_seq) = last_seq else {
        return Err(why_refused(pool, change).await);
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
        .collect()
}

fn insert_comment(q: &mut Statement, n: usize, c: &Comment) -> Result<(), StoreError> {
    let values = [
        q.arg(c.id.as_uuid())?,
        q.arg(c.session_id.as_uuid())?,
        q.arg(c.author.as_uuid())?,
        q.arg(c.text.as_str().to_owned())?,
        q.arg(c.created_at)?,
    ]
    .join(", ");
    let _ = write!(
        q.sql,
        ", w{n} AS (INSERT INTO comments (id, session_id, author_participant_id, text, created_at)
                    SELECT {values} FROM s)"
    );
    Ok(())
}

fn insert_prompt(q: &mut Statement, n: usize, p: &Prompt) -> Result<(), StoreError> {
    let values = [
        q.arg(p.id.as_uuid())?,
        q.arg(p.session_id.as_uuid())?,
        q.arg(p.author.as_uuid())?,
        q.arg(p.text.as_str().to_owned())?,
        q.arg(p.status.as_str())?,
        q.arg(p.created_at)?,
        q.arg(p.queued_at)?,
        q.arg(p.resolved_at)?,
        q.arg(p.resolved_by.map(|id| id.as_uuid()))?,
        q.arg(p.started_at)?,
        q.arg(p.finished_at)?,
        q.arg(p.stop_reason.map(tandem_domain::StopReason::as_str))?,
        q.arg(p.error.clone())?,
        q.arg(p.retry_of.map(|id| id.as_uuid()))?,
    ]
    .join(", ");
    let _ = write!(
        q.sql,
        ", w{n} AS (INSERT INTO prompts (id, session_id, author_participant_id, text, status, created_at,
                                        queued_at, resolved_at, resolved_by, started_at, finished_at,
                                        stop_reason, error, retry_of)
                    SELECT {values} FROM s)"
    );
    Ok(())
}

/// The events, numbered after the session's new `last_seq` minus their count.
fn insert_events(
    q: &mut Statement,
    change: &Change,
    session: &str,
    added: &str,
) -> Result<(), StoreError> {
    let types: Vec<&str> = change
        .events
        .iter()
        .map(|event| event.payload.event_type())
        .collect();
    let kinds: Vec<&str> = change
        .events
        .iter()
        .map(|event| event.actor.kind())
        .collect();
    let actors: Vec<Option<uuid::Uuid>> =
        change.events.iter().map(|event| event.actor.id()).collect();
    let data: Vec<String> = change
        .events
        .iter()
        .map(|event| event.payload.data().to_string())
        .collect();
    let times: Vec<DateTime<Utc>> = change.events.iter().map(|event| event.at).collect();
    let (types, kinds, actors, data, times) = (
        q.arg(types)?,
        q.arg(kinds)?,
        q.arg(actors)?,
        q.arg(data)?,
        q.arg(times)?,
    );
    let _ = write!(
        q.sql,
        ", e AS (INSERT INTO events (session_id, seq, type, actor_kind, actor_id, data, created_at)
                 SELECT {session}, s.last_seq - {added} + x.ord, x.type, x.actor_kind, x.actor_id,
                        x.data::jsonb, x.created_at
                   FROM s, unnest({types}::text[], {kinds}::text[], {actors}::uuid[], {data}::text[],
                                  {times}::timestamptz[])
                           WITH ORDINALITY AS x(type, actor_kind, actor_id, data, created_at, ord))"
    );
    Ok(())
}

/// Why the session row was not updated: gone or ended.
async fn why_refused(pool: &PgPool, change: &Change) -> StoreError {
    let found: Result<Option<String>, _> =
        sqlx::query_scalar("SELECT status FROM sessions WHERE id = $1")
            .bind(change.session_id.as_uuid())
            .fetch_optional(pool)
            .await;
    match found {
        Err(error) => map_err(error),
        Ok(None) => StoreError::NotFound,
        Ok(Some(status)) if status != "active" => StoreError::SessionInactive,
        // Active: it changed in between; the caller retries.
        Ok(Some(_)) => StoreError::Conflict,
    }
}
