//! The session's agent state (`agent_states`): its row, its writes inside a
//! change, and the reads of the agent's workspace cleanup.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{FromRow, SqliteConnection, SqlitePool};
use tandem_domain::{
    AgentCommand, AgentMode, AgentModeId, AgentState, ModeRequest, ParticipantId, SessionId,
    Workspace, WorkspaceCleanup,
};
use tandem_ports::StoreError;
use uuid::Uuid;

use crate::map_err;
use crate::time::micros;

const COLUMNS: &str = "session_id, load_session, workspace_kind, workspace_path, workspace_branch,
    workspace_cleanup, commands, modes, current_mode, requested_mode, mode_requested_by, title, version";

#[derive(FromRow)]
struct AgentStateRow {
    session_id: Uuid,
    load_session: bool,
    workspace_kind: Option<String>,
    workspace_path: Option<String>,
    workspace_branch: Option<String>,
    workspace_cleanup: Option<String>,
    commands: Json<Vec<AgentCommand>>,
    modes: Json<Vec<AgentMode>>,
    current_mode: Option<String>,
    requested_mode: Option<String>,
    mode_requested_by: Option<Uuid>,
    title: Option<String>,
    version: i64,
}

fn corrupt(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::backend(error)
}

impl TryFrom<AgentStateRow> for AgentState {
    type Error = StoreError;

    fn try_from(row: AgentStateRow) -> Result<Self, StoreError> {
        let workspace = match (row.workspace_kind.as_deref(), row.workspace_path) {
            (Some(kind), Some(path)) => Some(Workspace {
                kind: kind.parse().map_err(corrupt)?,
                path,
                branch: row.workspace_branch,
            }),
            (None, None) => None,
            _ => {
                return Err(StoreError::Backend(
                    "a workspace with half its columns".into(),
                ));
            }
        };
        let mode_request = match (row.requested_mode, row.mode_requested_by) {
            (Some(mode), Some(by)) => Some(ModeRequest {
                mode_id: AgentModeId::parse(&mode).map_err(corrupt)?,
                by: ParticipantId::from_uuid(by),
            }),
            (None, None) => None,
            _ => {
                return Err(StoreError::Backend(
                    "a mode request with half its columns".into(),
                ));
            }
        };
        Ok(Self {
            session_id: SessionId::from_uuid(row.session_id),
            load_session: row.load_session,
            workspace,
            workspace_cleanup: row
                .workspace_cleanup
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(corrupt)?,
            commands: row.commands.0,
            modes: row.modes.0,
            current_mode: row
                .current_mode
                .as_deref()
                .map(AgentModeId::parse)
                .transpose()
                .map_err(corrupt)?,
            mode_request,
            title: row.title,
            version: u32::try_from(row.version).map_err(corrupt)?,
        })
    }
}

/// Binds the state's columns after `session_id` (`?2`..`?12`) to `query`.
fn bind_state<'q>(
    query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    s: &'q AgentState,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    let workspace = s.workspace.as_ref();
    let request = s.mode_request.as_ref();
    query
        .bind(s.load_session)
        .bind(workspace.map(|w| w.kind.as_str()))
        .bind(workspace.map(|w| w.path.as_str()))
        .bind(workspace.and_then(|w| w.branch.as_deref()))
        .bind(s.workspace_cleanup.map(WorkspaceCleanup::as_str))
        .bind(Json(&s.commands))
        .bind(Json(&s.modes))
        .bind(s.current_mode.as_ref().map(AgentModeId::as_str))
        .bind(request.map(|r| r.mode_id.as_str()))
        .bind(request.map(|r| r.by.as_uuid()))
        .bind(s.title.as_deref())
}

pub(crate) async fn insert(tx: &mut SqliteConnection, s: &AgentState) -> Result<(), StoreError> {
    let query = sqlx::query(
        "INSERT INTO agent_states (session_id, load_session, workspace_kind, workspace_path,
                                   workspace_branch, workspace_cleanup, commands, modes, current_mode,
                                   requested_mode, mode_requested_by, title)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )
    .bind(s.session_id.as_uuid());
    bind_state(query, s)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    Ok(())
}

pub(crate) async fn update(tx: &mut SqliteConnection, s: &AgentState) -> Result<(), StoreError> {
    let query = sqlx::query(
        "UPDATE agent_states
            SET load_session = ?2, workspace_kind = ?3, workspace_path = ?4, workspace_branch = ?5,
                workspace_cleanup = ?6, commands = ?7, modes = ?8, current_mode = ?9,
                requested_mode = ?10, mode_requested_by = ?11, title = ?12, version = version + 1
          WHERE session_id = ?1 AND version = ?13",
    )
    .bind(s.session_id.as_uuid());
    let result = bind_state(query, s)
        .bind(i64::from(s.version))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    if result.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict)
    }
}

pub(crate) async fn read(
    reader: &SqlitePool,
    session_id: SessionId,
) -> Result<Option<AgentState>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM agent_states WHERE session_id = ?1");
    let row: Option<AgentStateRow> = sqlx::query_as(&sql)
        .bind(session_id.as_uuid())
        .fetch_optional(reader)
        .await
        .map_err(map_err)?;
    row.map(AgentState::try_from).transpose()
}

pub(crate) async fn record_cleanup(
    writer: &SqlitePool,
    session_id: SessionId,
    cleanup: WorkspaceCleanup,
) -> Result<(), StoreError> {
    let result = sqlx::query(
        "UPDATE agent_states SET workspace_cleanup = ?2, version = version + 1 WHERE session_id = ?1",
    )
    .bind(session_id.as_uuid())
    .bind(cleanup.as_str())
    .execute(writer)
    .await
    .map_err(map_err)?;
    if result.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

pub(crate) async fn awaiting_cleanup(
    reader: &SqlitePool,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<SessionId>, StoreError> {
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT a.session_id FROM agent_states a
           JOIN sessions s ON s.id = a.session_id AND s.status <> 'active'
           LEFT JOIN agent_leases l ON l.session_id = a.session_id
          WHERE a.workspace_cleanup IS NULL AND a.workspace_kind IN ('directory', 'worktree')
            AND (l.session_id IS NULL OR l.expires_at <= ?1)
          ORDER BY a.session_id
          LIMIT ?2",
    )
    .bind(micros(now))
    .bind(i64::from(limit))
    .fetch_all(reader)
    .await
    .map_err(map_err)?;
    Ok(rows
        .into_iter()
        .map(|(id,)| SessionId::from_uuid(id))
        .collect())
}
