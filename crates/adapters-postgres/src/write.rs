//! The write path: one `Change` in one transaction.

use sqlx::PgConnection;
use sqlx::types::Json;
use tandem_domain::{Comment, Event, Invite, Participant, PermissionRequest, Prompt, Seq, Session};
use tandem_ports::{Change, StoreError, TokenHash, Write};

use crate::map_err;

/// Applies `change` inside the caller's transaction and returns the stored events.
///
/// The session row is updated (and so locked) before anything else is written:
/// that update allocates the events' `seq` numbers and checks that the session is
/// still active, and it serializes all changes of one session.
pub(crate) async fn apply(
    tx: &mut PgConnection,
    change: &Change,
) -> Result<Vec<Event>, StoreError> {
    change.ensure_single_session()?;
    for write in &change.writes {
        if let Write::InsertSession(session) = write {
            insert_session(tx, session).await?;
        }
    }
    let count = i64::try_from(change.events.len()).map_err(StoreError::backend)?;
    let last_seq: Option<i64> = sqlx::query_scalar(
        "UPDATE sessions
            SET last_seq = last_seq + $2,
                last_activity_at = GREATEST(last_activity_at, COALESCE($3, last_activity_at))
          WHERE id = $1 AND status = 'active'
      RETURNING last_seq",
    )
    .bind(change.session_id.as_uuid())
    .bind(count)
    .bind(change.activity_at)
    .fetch_optional(&mut *tx)
    .await
    .map_err(map_err)?;
    let Some(last_seq) = last_seq else {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM sessions WHERE id = $1")
                .bind(change.session_id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
        return Err(match status.as_deref() {
            None => StoreError::NotFound,
            Some(_) => StoreError::SessionInactive,
        });
    };

    if let Some(holder) = &change.lease_holder {
        // The session row is locked by the update above, and a replica that takes
        // a lease over fails the old holder's prompts under that lock too: a
        // change that passes this check is ordered before them.
        let held: Option<String> =
            sqlx::query_scalar("SELECT holder FROM agent_leases WHERE session_id = $1")
                .bind(change.session_id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
        if held.as_deref() != Some(holder.as_str()) {
            return Err(StoreError::LeaseLost);
        }
    }

    for write in &change.writes {
        match write {
            Write::InsertSession(_) => {}
            Write::UpdateSession(session) => update_session(tx, session).await?,
            Write::InsertParticipant {
                participant,
                token_hash,
            } => {
                insert_participant(tx, participant, token_hash).await?;
            }
            Write::UpdateParticipant(participant) => update_participant(tx, participant).await?,
            Write::InsertInvite { invite, token_hash } => {
                insert_invite(tx, invite, token_hash).await?;
            }
            Write::UpdateInvite(invite) => update_invite(tx, invite).await?,
            Write::RedeemInvite(invite) => redeem_invite(tx, invite).await?,
            Write::InsertComment(comment) => insert_comment(tx, comment).await?,
            Write::InsertPrompt(prompt) => insert_prompt(tx, prompt).await?,
            Write::UpdatePrompt(prompt) => update_prompt(tx, prompt).await?,
            Write::InsertPermissionRequest(request) => {
                insert_permission_request(tx, request).await?;
            }
            Write::UpdatePermissionRequest(request) => {
                update_permission_request(tx, request).await?;
            }
            Write::InsertAgentState(state) => crate::agent_state::insert(tx, state).await?,
            Write::UpdateAgentState(state) => crate::agent_state::update(tx, state).await?,
        }
    }

    let first = last_seq - count + 1;
    let mut events = Vec::with_capacity(change.events.len());
    for (seq, event) in (first..).zip(&change.events) {
        sqlx::query(
            "INSERT INTO events (session_id, seq, type, actor_kind, actor_id, data, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(change.session_id.as_uuid())
        .bind(seq)
        .bind(event.payload.event_type())
        .bind(event.actor.kind())
        .bind(event.actor.id())
        .bind(Json(event.payload.data()))
        .bind(event.at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        events.push(Event {
            session_id: change.session_id,
            seq: Seq::new(u64::try_from(seq).map_err(StoreError::backend)?),
            at: event.at,
            actor: event.actor,
            payload: event.payload.clone(),
        });
    }
    Ok(events)
}

/// Fails the change with `Conflict` when an update matched no row.
fn expect_one(result: &sqlx::postgres::PgQueryResult) -> Result<(), StoreError> {
    if result.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict)
    }
}

fn version(v: u32) -> i64 {
    i64::from(v)
}

fn secs(ttl: tandem_domain::Ttl) -> i32 {
    // A Ttl is at most 30 days, far below i32::MAX seconds.
    i32::try_from(ttl.as_secs()).unwrap_or(i32::MAX)
}

fn count(n: u32) -> i64 {
    i64::from(n)
}

async fn insert_session(tx: &mut PgConnection, s: &Session) -> Result<(), StoreError> {
    let end = s.end.as_ref();
    sqlx::query(
        "INSERT INTO sessions (id, workspace_id, title, host_user_id, agent_profile, agent_session_id,
                               mode, permission_policy, status, close_reason, closed_at, summary,
                               created_at, expires_at, idle_timeout_secs, last_activity_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(s.id.as_uuid())
    .bind(s.workspace_id.as_str())
    .bind(s.title.as_str())
    .bind(s.host_user_id.as_ref().map(tandem_domain::UserId::as_str))
    .bind(s.agent_profile.as_str())
    .bind(s.agent_session_id.as_deref())
    .bind(s.mode.as_str())
    .bind(s.permission_policy.as_str())
    .bind(s.status().as_str())
    .bind(end.map(|e| e.reason.as_str()))
    .bind(end.map(|e| e.at))
    .bind(end.and_then(|e| e.summary.as_ref()).map(tandem_domain::Summary::as_str))
    .bind(s.created_at)
    .bind(s.expires_at)
    .bind(secs(s.idle_timeout))
    .bind(s.last_activity_at)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn update_session(tx: &mut PgConnection, s: &Session) -> Result<(), StoreError> {
    let end = s.end.as_ref();
    let result = sqlx::query(
        "UPDATE sessions
            SET title = $3, agent_session_id = $4, mode = $5, permission_policy = $6, status = $7,
                close_reason = $8, closed_at = $9, summary = $10, expires_at = $11,
                idle_timeout_secs = $12, version = version + 1
          WHERE id = $1 AND version = $2",
    )
    .bind(s.id.as_uuid())
    .bind(version(s.version))
    .bind(s.title.as_str())
    .bind(s.agent_session_id.as_deref())
    .bind(s.mode.as_str())
    .bind(s.permission_policy.as_str())
    .bind(s.status().as_str())
    .bind(end.map(|e| e.reason.as_str()))
    .bind(end.map(|e| e.at))
    .bind(
        end.and_then(|e| e.summary.as_ref())
            .map(tandem_domain::Summary::as_str),
    )
    .bind(s.expires_at)
    .bind(secs(s.idle_timeout))
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    expect_one(&result)
}

async fn insert_participant(
    tx: &mut PgConnection,
    p: &Participant,
    token: &TokenHash,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO participants (id, session_id, user_id, display_name, role, token_hash, joined_at, left_at, removed_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(p.id.as_uuid())
    .bind(p.session_id.as_uuid())
    .bind(p.user_id.as_ref().map(tandem_domain::UserId::as_str))
    .bind(p.display_name.as_str())
    .bind(p.role.as_str())
    .bind(token.as_bytes().as_slice())
    .bind(p.joined_at)
    .bind(p.left_at)
    .bind(p.removed_by.map(|id| id.as_uuid()))
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn update_participant(tx: &mut PgConnection, p: &Participant) -> Result<(), StoreError> {
    let result = sqlx::query(
        "UPDATE participants
            SET display_name = $3, role = $4, left_at = $5, removed_by = $6, version = version + 1
          WHERE id = $1 AND version = $2",
    )
    .bind(p.id.as_uuid())
    .bind(version(p.version))
    .bind(p.display_name.as_str())
    .bind(p.role.as_str())
    .bind(p.left_at)
    .bind(p.removed_by.map(|id| id.as_uuid()))
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    expect_one(&result)
}

async fn insert_invite(
    tx: &mut PgConnection,
    i: &Invite,
    token: &TokenHash,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO invites (id, session_id, role, max_uses, uses, token_hash, created_at, expires_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(i.id.as_uuid())
    .bind(i.session_id.as_uuid())
    .bind(i.role.as_str())
    .bind(i.max_uses.map(count))
    .bind(count(i.uses))
    .bind(token.as_bytes().as_slice())
    .bind(i.created_at)
    .bind(i.expires_at)
    .bind(i.revoked_at)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn update_invite(tx: &mut PgConnection, i: &Invite) -> Result<(), StoreError> {
    let result = sqlx::query(
        "UPDATE invites
            SET uses = $3, revoked_at = $4, version = version + 1
          WHERE id = $1 AND version = $2",
    )
    .bind(i.id.as_uuid())
    .bind(version(i.version))
    .bind(count(i.uses))
    .bind(i.revoked_at)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    expect_one(&result)
}

async fn redeem_invite(tx: &mut PgConnection, i: &Invite) -> Result<(), StoreError> {
    let result = sqlx::query(
        "UPDATE invites SET uses = uses + 1, version = version + 1
          WHERE id = $1 AND revoked_at IS NULL AND (max_uses IS NULL OR uses < max_uses)",
    )
    .bind(i.id.as_uuid())
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    expect_one(&result)
}

async fn insert_comment(tx: &mut PgConnection, c: &Comment) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO comments (id, session_id, author_participant_id, text, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(c.id.as_uuid())
    .bind(c.session_id.as_uuid())
    .bind(c.author.as_uuid())
    .bind(c.text.as_str())
    .bind(c.created_at)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn insert_prompt(tx: &mut PgConnection, p: &Prompt) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO prompts (id, session_id, author_participant_id, text, status, created_at, queued_at,
                              resolved_at, resolved_by, started_at, finished_at, stop_reason, error, retry_of)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(p.id.as_uuid())
    .bind(p.session_id.as_uuid())
    .bind(p.author.as_uuid())
    .bind(p.text.as_str())
    .bind(p.status.as_str())
    .bind(p.created_at)
    .bind(p.queued_at)
    .bind(p.resolved_at)
    .bind(p.resolved_by.map(|id| id.as_uuid()))
    .bind(p.started_at)
    .bind(p.finished_at)
    .bind(p.stop_reason.map(tandem_domain::StopReason::as_str))
    .bind(p.error.as_deref())
    .bind(p.retry_of.map(|id| id.as_uuid()))
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn update_prompt(tx: &mut PgConnection, p: &Prompt) -> Result<(), StoreError> {
    let result = sqlx::query(
        "UPDATE prompts
            SET text = $3, status = $4, queued_at = $5, resolved_at = $6, resolved_by = $7,
                started_at = $8, finished_at = $9, stop_reason = $10, error = $11, version = version + 1
          WHERE id = $1 AND version = $2",
    )
    .bind(p.id.as_uuid())
    .bind(version(p.version))
    .bind(p.text.as_str())
    .bind(p.status.as_str())
    .bind(p.queued_at)
    .bind(p.resolved_at)
    .bind(p.resolved_by.map(|id| id.as_uuid()))
    .bind(p.started_at)
    .bind(p.finished_at)
    .bind(p.stop_reason.map(tandem_domain::StopReason::as_str))
    .bind(p.error.as_deref())
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    expect_one(&result)
}

async fn insert_permission_request(
    tx: &mut PgConnection,
    r: &PermissionRequest,
) -> Result<(), StoreError> {
    let resolution = r.resolution.as_ref();
    sqlx::query(
        "INSERT INTO permission_requests (id, session_id, prompt_id, tool_call, options, created_at, deadline,
                                          outcome, cause, resolved_by, resolved_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(r.id.as_uuid())
    .bind(r.session_id.as_uuid())
    .bind(r.prompt_id.as_uuid())
    .bind(Json(&r.tool_call))
    .bind(Json(&r.options))
    .bind(r.created_at)
    .bind(r.deadline)
    .bind(resolution.map(|res| Json(&res.outcome)))
    .bind(resolution.map(|res| res.cause.as_str()))
    .bind(resolution.and_then(|res| res.by).map(|id| id.as_uuid()))
    .bind(resolution.map(|res| res.at))
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn update_permission_request(
    tx: &mut PgConnection,
    r: &PermissionRequest,
) -> Result<(), StoreError> {
    let resolution = r.resolution.as_ref();
    let result = sqlx::query(
        "UPDATE permission_requests
            SET outcome = $3, cause = $4, resolved_by = $5, resolved_at = $6, version = version + 1
          WHERE id = $1 AND version = $2",
    )
    .bind(r.id.as_uuid())
    .bind(version(r.version))
    .bind(resolution.map(|res| Json(&res.outcome)))
    .bind(resolution.map(|res| res.cause.as_str()))
    .bind(resolution.and_then(|res| res.by).map(|id| id.as_uuid()))
    .bind(resolution.map(|res| res.at))
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    expect_one(&result)
}
