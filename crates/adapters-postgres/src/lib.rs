//! Tandem's Postgres adapter: the production `SessionStore`.
//!
//! Every change commits with its events in one transaction (the changes people
//! and agents make most, several at once: see `group`); the session row, locked
//! first, allocates gapless `seq` numbers and serializes writers of one session. [`PostgresEventBus`] wakes stream subscribers across replicas
//! (LISTEN/NOTIFY after commit, with a polling safety net).

mod agent_state;
mod bus;
mod group;
mod presence;
mod rows;
mod single;
mod webhooks;
mod write;

pub use bus::PostgresEventBus;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tandem_domain::{
    ApiKey, ApiKeyId, Comment, CommentId, Event, Invite, InviteId, Participant, ParticipantId,
    PermissionRequest, PermissionRequestId, Prompt, PromptId, PromptStatus, Seq, Session,
    SessionId, WorkspaceId,
};
use tandem_ports::{
    Change, OpenWork, Page, Plan, PromptFilter, SessionFilter, SessionStore, StoreError,
    StreamTicket, TicketHolder, TokenHash,
};

use crate::group::GroupWriter;
use crate::presence::{Presence, holder_alive};
use crate::rows::{
    ApiKeyRow, CommentRow, EventRow, InviteRow, ParticipantRow, PermissionRequestRow, PromptRow,
    SessionRow, scopes_text,
};

/// The schema migrations, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/postgres");

/// A `SessionStore` on Postgres. Cheap to clone: clones share one pool and
/// the group-commit writer.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    group: GroupWriter,
    /// The connections that keep this process's lease holders alive.
    presence: Presence,
}

/// Maps sqlx errors onto the port's: a unique violation is a duplicate, a missing
/// row or a dangling reference is "not found", anything else is a backend failure.
pub(crate) fn map_err(error: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &error {
        if db.is_unique_violation() {
            return StoreError::Duplicate;
        }
        if db.is_foreign_key_violation() {
            return StoreError::NotFound;
        }
    }
    if matches!(error, sqlx::Error::RowNotFound) {
        return StoreError::NotFound;
    }
    StoreError::backend(error)
}

const SESSION_COLUMNS: &str =
    "id, workspace_id, title, host_user_id, agent_profile, agent_session_id, mode,
    permission_policy, close_reason, closed_at, summary, created_at, expires_at, idle_timeout_secs,
    last_activity_at, last_seq, version";
const PARTICIPANT_COLUMNS: &str =
    "id, session_id, user_id, display_name, role, joined_at, left_at, removed_by, version";
const INVITE_COLUMNS: &str =
    "id, session_id, role, max_uses, uses, created_at, expires_at, revoked_at, version";
const PROMPT_COLUMNS: &str =
    "id, session_id, author_participant_id, text, status, created_at, queued_at,
    resolved_at, resolved_by, started_at, finished_at, stop_reason, error, retry_of, version";
const PERMISSION_COLUMNS: &str =
    "id, session_id, prompt_id, tool_call, options, created_at, deadline,
    outcome, cause, resolved_by, resolved_at, version";
const API_KEY_COLUMNS: &str = "id, workspace_id, name, scopes, created_at, revoked_at";

/// A key every replica takes before bootstrapping the first admin key.
const BOOTSTRAP_LOCK: i64 = 0x7461_6e64_656d; // "tandem"

fn limit(n: u32) -> i64 {
    i64::from(n)
}

/// A `seq` as stored. No stored `seq` exceeds `i64::MAX`, so a larger cursor means
/// "after everything".
fn seq(value: Seq) -> i64 {
    i64::try_from(value.get()).unwrap_or(i64::MAX)
}

fn convert<R, T: TryFrom<R, Error = StoreError>>(rows: Vec<R>) -> Result<Vec<T>, StoreError> {
    rows.into_iter().map(T::try_from).collect()
}

impl PostgresStore {
    /// Connects to `url` with a pool of at most `max_connections`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse().map_err(StoreError::backend)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await
            .map_err(StoreError::backend)?;
        Ok(Self::from_pool(pool))
    }

    /// Wraps an existing pool (tests get one per database from `#[sqlx::test]`).
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            group: GroupWriter::new(pool.clone()),
            pool,
            presence: Presence::default(),
        }
    }

    /// The pool, for the event bus that shares it.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Brings the schema up to date; safe to run from several replicas at once
    /// (sqlx takes an advisory lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await.map_err(StoreError::backend)
    }

    async fn one<R, T>(&self, sql: &str, id: uuid::Uuid) -> Result<T, StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
        T: TryFrom<R, Error = StoreError>,
    {
        let row: R = sqlx::query_as(sql)
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        T::try_from(row)
    }

    async fn by_token<R, T>(&self, sql: &str, token_hash: &TokenHash) -> Result<T, StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
        T: TryFrom<R, Error = StoreError>,
    {
        let row: R = sqlx::query_as(sql)
            .bind(token_hash.as_bytes().as_slice())
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        T::try_from(row)
    }
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn apply(&self, change: Change) -> Result<Vec<Event>, StoreError> {
        if group::fits(&change) {
            return self.group.apply(change).await;
        }
        apply_alone(&self.pool, &change).await
    }

    async fn apply_planned(
        &self,
        session_id: SessionId,
        plan: Plan<'_>,
    ) -> Result<Vec<Event>, StoreError> {
        // Read and write in one transaction: the row lock (`FOR UPDATE`) holds every other change of the session until commit.
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1 FOR UPDATE");
        let session: SessionRow = sqlx::query_as(&sql)
            .bind(session_id.as_uuid())
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        let sql = format!(
            "SELECT {PROMPT_COLUMNS} FROM prompts
              WHERE session_id = $1 AND status IN ('queued', 'running') ORDER BY id"
        );
        let prompts: Vec<PromptRow> = sqlx::query_as(&sql)
            .bind(session_id.as_uuid())
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        let sql = format!(
            "SELECT {PERMISSION_COLUMNS} FROM permission_requests
              WHERE session_id = $1 AND resolved_at IS NULL ORDER BY id"
        );
        let requests: Vec<PermissionRequestRow> = sqlx::query_as(&sql)
            .bind(session_id.as_uuid())
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        let work = OpenWork {
            session: Session::try_from(session)?,
            prompts: convert(prompts)?,
            permission_requests: convert(requests)?,
        };
        let Some(change) = plan(work).map_err(StoreError::Refused)? else {
            return Ok(Vec::new());
        };
        if change.session_id != session_id {
            return Err(StoreError::Backend(
                "a planned change wrote another session".into(),
            ));
        }
        let events = write::apply(&mut tx, &change).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(events)
    }

    async fn session(&self, id: SessionId) -> Result<Session, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1");
        self.one::<SessionRow, _>(&sql, id.as_uuid()).await
    }

    async fn sessions(
        &self,
        filter: &SessionFilter,
        page: Page<SessionId>,
    ) -> Result<Vec<Session>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions
              WHERE workspace_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::uuid IS NULL OR id < $3)
              ORDER BY id DESC LIMIT $4"
        );
        let rows: Vec<SessionRow> = sqlx::query_as(&sql)
            .bind(filter.workspace_id.as_str())
            .bind(filter.status.map(tandem_domain::SessionStatus::as_str))
            .bind(page.after.map(|id| id.as_uuid()))
            .bind(limit(page.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        convert(rows)
    }

    async fn sessions_due(&self, now: DateTime<Utc>, max: u32) -> Result<Vec<Session>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions
              WHERE status = 'active'
                AND (expires_at <= $1 OR last_activity_at + make_interval(secs => idle_timeout_secs) <= $1)
              ORDER BY LEAST(expires_at, last_activity_at + make_interval(secs => idle_timeout_secs)), id
              LIMIT $2"
        );
        let rows: Vec<SessionRow> = sqlx::query_as(&sql)
            .bind(now)
            .bind(limit(max))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        convert(rows)
    }

    async fn session_with_participant(
        &self,
        session_id: SessionId,
        participant_id: ParticipantId,
    ) -> Result<(Session, Participant), StoreError> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            let session: Vec<String> = SESSION_COLUMNS
                .split(',')
                .map(|column| format!("s.{}", column.trim()))
                .collect();
            format!(
                "SELECT {}, {} FROM sessions s JOIN participants p ON p.session_id = s.id
                  WHERE s.id = $1 AND p.id = $2",
                session.join(", "),
                rows::ACTING_PARTICIPANT_COLUMNS
            )
        });
        let row: rows::ActingRow = sqlx::query_as(&SQL)
            .bind(session_id.as_uuid())
            .bind(participant_id.as_uuid())
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        row.try_into()
    }

    async fn participant(&self, id: ParticipantId) -> Result<Participant, StoreError> {
        let sql = format!("SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE id = $1");
        self.one::<ParticipantRow, _>(&sql, id.as_uuid()).await
    }

    async fn participant_by_token(
        &self,
        token_hash: &TokenHash,
    ) -> Result<Participant, StoreError> {
        let sql = format!("SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE token_hash = $1");
        self.by_token::<ParticipantRow, _>(&sql, token_hash).await
    }

    async fn participants(&self, session_id: SessionId) -> Result<Vec<Participant>, StoreError> {
        let sql = format!(
            "SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE session_id = $1 ORDER BY id"
        );
        let rows: Vec<ParticipantRow> = sqlx::query_as(&sql)
            .bind(session_id.as_uuid())
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        convert(rows)
    }

    async fn invite(&self, id: InviteId) -> Result<Invite, StoreError> {
        let sql = format!("SELECT {INVITE_COLUMNS} FROM invites WHERE id = $1");
        self.one::<InviteRow, _>(&sql, id.as_uuid()).await
    }

    async fn invite_by_token(&self, token_hash: &TokenHash) -> Result<Invite, StoreError> {
        let sql = format!("SELECT {INVITE_COLUMNS} FROM invites WHERE token_hash = $1");
        self.by_token::<InviteRow, _>(&sql, token_hash).await
    }

    async fn invites(&self, session_id: SessionId) -> Result<Vec<Invite>, StoreError> {
        let sql = format!("SELECT {INVITE_COLUMNS} FROM invites WHERE session_id = $1 ORDER BY id");
        let rows: Vec<InviteRow> = sqlx::query_as(&sql)
            .bind(session_id.as_uuid())
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        convert(rows)
    }

    async fn comments(
        &self,
        session_id: SessionId,
        page: Page<CommentId>,
    ) -> Result<Vec<Comment>, StoreError> {
        let rows: Vec<CommentRow> = sqlx::query_as(
            "SELECT id, session_id, author_participant_id, text, created_at FROM comments
              WHERE session_id = $1 AND ($2::uuid IS NULL OR id > $2)
              ORDER BY id LIMIT $3",
        )
        .bind(session_id.as_uuid())
        .bind(page.after.map(|id| id.as_uuid()))
        .bind(limit(page.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        convert(rows)
    }

    async fn prompt(&self, id: PromptId) -> Result<Prompt, StoreError> {
        let sql = format!("SELECT {PROMPT_COLUMNS} FROM prompts WHERE id = $1");
        self.one::<PromptRow, _>(&sql, id.as_uuid()).await
    }

    async fn prompts(
        &self,
        filter: &PromptFilter,
        page: Page<PromptId>,
    ) -> Result<Vec<Prompt>, StoreError> {
        let sql = format!(
            "SELECT {PROMPT_COLUMNS} FROM prompts
              WHERE session_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::uuid IS NULL OR id > $3)
              ORDER BY id LIMIT $4"
        );
        let rows: Vec<PromptRow> = sqlx::query_as(&sql)
            .bind(filter.session_id.as_uuid())
            .bind(filter.status.map(PromptStatus::as_str))
            .bind(page.after.map(|id| id.as_uuid()))
            .bind(limit(page.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        convert(rows)
    }

    async fn next_queued_prompt(
        &self,
        session_id: SessionId,
    ) -> Result<Option<Prompt>, StoreError> {
        let sql = format!(
            "SELECT {PROMPT_COLUMNS} FROM prompts
              WHERE session_id = $1 AND status = 'queued'
              ORDER BY queued_at, id LIMIT 1"
        );
        let row: Option<PromptRow> = sqlx::query_as(&sql)
            .bind(session_id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(Prompt::try_from).transpose()
    }

    async fn prompts_in_status(
        &self,
        status: PromptStatus,
        max: u32,
    ) -> Result<Vec<Prompt>, StoreError> {
        let sql =
            format!("SELECT {PROMPT_COLUMNS} FROM prompts WHERE status = $1 ORDER BY id LIMIT $2");
        let rows: Vec<PromptRow> = sqlx::query_as(&sql)
            .bind(status.as_str())
            .bind(limit(max))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        convert(rows)
    }

    async fn permission_request(
        &self,
        id: PermissionRequestId,
    ) -> Result<PermissionRequest, StoreError> {
        let sql = format!("SELECT {PERMISSION_COLUMNS} FROM permission_requests WHERE id = $1");
        self.one::<PermissionRequestRow, _>(&sql, id.as_uuid())
            .await
    }

    async fn open_permission_requests(
        &self,
        prompt_id: PromptId,
    ) -> Result<Vec<PermissionRequest>, StoreError> {
        let sql = format!(
            "SELECT {PERMISSION_COLUMNS} FROM permission_requests
              WHERE prompt_id = $1 AND resolved_at IS NULL ORDER BY id"
        );
        let rows: Vec<PermissionRequestRow> = sqlx::query_as(&sql)
            .bind(prompt_id.as_uuid())
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        convert(rows)
    }

    async fn events(
        &self,
        session_id: SessionId,
        after: Seq,
        max: u32,
    ) -> Result<Vec<Event>, StoreError> {
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT session_id, seq, type, actor_kind, actor_id, data, created_at FROM events
              WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(session_id.as_uuid())
        .bind(seq(after))
        .bind(limit(max))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        convert(rows)
    }

    async fn insert_api_key(&self, key: &ApiKey, token_hash: &TokenHash) -> Result<(), StoreError> {
        insert_api_key(&self.pool, key, token_hash).await
    }

    async fn insert_first_admin_key(
        &self,
        key: &ApiKey,
        token_hash: &TokenHash,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(BOOTSTRAP_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM api_keys
                             WHERE revoked_at IS NULL AND ' ' || scopes || ' ' LIKE '% admin %')",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        if exists {
            return Ok(false);
        }
        insert_api_key(&mut *tx, key, token_hash).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn api_key_by_token(&self, token_hash: &TokenHash) -> Result<ApiKey, StoreError> {
        let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE token_hash = $1");
        self.by_token::<ApiKeyRow, _>(&sql, token_hash).await
    }

    async fn api_key(&self, id: ApiKeyId) -> Result<ApiKey, StoreError> {
        let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = $1");
        self.one::<ApiKeyRow, _>(&sql, id.as_uuid()).await
    }

    async fn api_keys(
        &self,
        workspace_id: Option<&WorkspaceId>,
        page: Page<ApiKeyId>,
    ) -> Result<Vec<ApiKey>, StoreError> {
        let sql = format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys
              WHERE ($1::text IS NULL OR workspace_id = $1) AND ($2::uuid IS NULL OR id < $2)
              ORDER BY id DESC LIMIT $3"
        );
        let rows: Vec<ApiKeyRow> = sqlx::query_as(&sql)
            .bind(workspace_id.map(WorkspaceId::as_str))
            .bind(page.after.map(|id| id.as_uuid()))
            .bind(limit(page.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        convert(rows)
    }

    async fn revoke_api_key(&self, id: ApiKeyId, at: DateTime<Utc>) -> Result<(), StoreError> {
        let result =
            sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id.as_uuid())
                .bind(at)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
        if result.rows_affected() == 1 {
            return Ok(());
        }
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM api_keys WHERE id = $1)")
                .bind(id.as_uuid())
                .fetch_one(&self.pool)
                .await
                .map_err(map_err)?;
        Err(if exists {
            StoreError::Conflict
        } else {
            StoreError::NotFound
        })
    }

    async fn insert_stream_ticket(
        &self,
        token_hash: &TokenHash,
        ticket: &StreamTicket,
    ) -> Result<(), StoreError> {
        let (participant, api_key) = match ticket.holder {
            TicketHolder::Participant(id) => (Some(id.as_uuid()), None),
            TicketHolder::ApiKey(id) => (None, Some(id.as_uuid())),
        };
        sqlx::query(
            "INSERT INTO stream_tickets (token_hash, session_id, participant_id, api_key_id, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash.as_bytes().as_slice())
        .bind(ticket.session_id.as_uuid())
        .bind(participant)
        .bind(api_key)
        .bind(ticket.expires_at)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn redeem_stream_ticket(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<StreamTicket, StoreError> {
        let row: Option<(
            uuid::Uuid,
            Option<uuid::Uuid>,
            Option<uuid::Uuid>,
            DateTime<Utc>,
        )> = sqlx::query_as(
            "UPDATE stream_tickets SET used_at = $2
              WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
          RETURNING session_id, participant_id, api_key_id, expires_at",
        )
        .bind(token_hash.as_bytes().as_slice())
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        let (session_id, participant, api_key, expires_at) = row.ok_or(StoreError::NotFound)?;
        let holder = match (participant, api_key) {
            (Some(id), None) => TicketHolder::Participant(ParticipantId::from_uuid(id)),
            (None, Some(id)) => TicketHolder::ApiKey(ApiKeyId::from_uuid(id)),
            _ => {
                return Err(StoreError::Backend(
                    "a stream ticket with no single holder".into(),
                ));
            }
        };
        Ok(StreamTicket {
            session_id: SessionId::from_uuid(session_id),
            holder,
            expires_at,
        })
    }

    async fn purge_stream_tickets(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM stream_tickets WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(result.rows_affected())
    }

    async fn register_lease_holder(&self, holder: &str) -> Result<(), StoreError> {
        self.presence.register(&self.pool, holder).await
    }

    async fn acquire_agent_lease(
        &self,
        session_id: SessionId,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "INSERT INTO agent_leases (session_id, holder, expires_at) VALUES ($1, $2, $4)
             ON CONFLICT (session_id) DO UPDATE
                SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
              WHERE agent_leases.holder = EXCLUDED.holder OR agent_leases.expires_at <= $3
                 OR NOT {}
          RETURNING holder",
            holder_alive("agent_leases.holder")
        );
        let held: Option<(String,)> = sqlx::query_as(&sql)
            .bind(session_id.as_uuid())
            .bind(holder)
            .bind(now)
            .bind(until)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(held.is_some())
    }

    async fn release_agent_lease(
        &self,
        session_id: SessionId,
        holder: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM agent_leases WHERE session_id = $1 AND holder = $2")
            .bind(session_id.as_uuid())
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn sessions_awaiting_agent(
        &self,
        now: DateTime<Utc>,
        max: u32,
    ) -> Result<Vec<SessionId>, StoreError> {
        let sql = format!(
            "SELECT DISTINCT p.session_id FROM prompts p
               JOIN sessions s ON s.id = p.session_id AND s.status = 'active'
               LEFT JOIN agent_leases l ON l.session_id = p.session_id
              WHERE p.status IN ('queued', 'running')
                AND (l.session_id IS NULL OR l.expires_at <= $1 OR NOT {})
              LIMIT $2",
            holder_alive("l.holder")
        );
        let rows: Vec<(uuid::Uuid,)> = sqlx::query_as(&sql)
            .bind(now)
            .bind(limit(max))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|(id,)| SessionId::from_uuid(id))
            .collect())
    }

    async fn agent_state(
        &self,
        session_id: SessionId,
    ) -> Result<Option<tandem_domain::AgentState>, StoreError> {
        agent_state::read(&self.pool, session_id).await
    }

    async fn record_workspace_cleanup(
        &self,
        session_id: SessionId,
        cleanup: tandem_domain::WorkspaceCleanup,
    ) -> Result<(), StoreError> {
        agent_state::record_cleanup(&self.pool, session_id, cleanup).await
    }

    async fn sessions_awaiting_cleanup(
        &self,
        now: DateTime<Utc>,
        max: u32,
    ) -> Result<Vec<SessionId>, StoreError> {
        agent_state::awaiting_cleanup(&self.pool, now, max).await
    }

    async fn close(&self) {
        // The holders' leases were released by now; closing their connections
        // last frees any that were not.
        self.pool.close().await;
        self.presence.close().await;
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

/// Writes `change` in a transaction of its own: one statement when it can be
/// (`single`), else `write::apply` between BEGIN and COMMIT.
pub(crate) async fn apply_alone(pool: &PgPool, change: &Change) -> Result<Vec<Event>, StoreError> {
    if single::fits(change) {
        return single::apply(pool, change).await;
    }
    let mut tx = pool.begin().await.map_err(map_err)?;
    let events = write::apply(&mut tx, change).await?;
    tx.commit().await.map_err(map_err)?;
    Ok(events)
}

async fn insert_api_key<'e, E>(
    executor: E,
    key: &ApiKey,
    token_hash: &TokenHash,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    sqlx::query(
        "INSERT INTO api_keys (id, workspace_id, name, scopes, token_hash, created_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(key.id.as_uuid())
    .bind(key.workspace_id.as_str())
    .bind(key.name.as_str())
    .bind(scopes_text(&key.scopes))
    .bind(token_hash.as_bytes().as_slice())
    .bind(key.created_at)
    .bind(key.revoked_at)
    .execute(executor)
    .await
    .map_err(map_err)?;
    Ok(())
}
