//! The webhook part of the Postgres store: endpoints, their cursors over each
//! session's log, their deliveries and leases.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{FromRow, Postgres, Transaction};
use tandem_domain::{
    DeliveryStatus, Disabled, PreviousSecret, Seq, SessionId, StoredWebhook, WebhookDelivery,
    WebhookDeliveryId, WebhookDescription, WebhookEndpoint, WebhookEventTypes, WebhookId,
    WebhookSecret, WebhookUrl, WorkspaceId,
};
use tandem_ports::{
    Page, StoreError, WEBHOOK_SINCE_MARGIN, WebhookBacklog, WebhookProgress, WebhookStore,
};
use uuid::Uuid;

use crate::{PostgresStore, limit, map_err, seq};

const WEBHOOK_COLUMNS: &str = "id, workspace_id, url, event_types, session_id, description,
    format, secret, previous_secret, previous_secret_expires_at, disabled_at, disabled_reason,
    since, created_at, updated_at, version";
const DELIVERY_COLUMNS: &str = "id, webhook_id, session_id, seq, event_type, status, attempts,
    created_at, last_attempt_at, next_attempt_at, response_status, error, latency_ms";

/// The sessions an endpoint hears of (`e`, `s`, `c` being the endpoint, a
/// session and its cursor, if any) whose events are to handle at `$now`: the
/// log is ahead of the cursor and the pending delivery is due; or, without a
/// cursor, the session began after the endpoint's `since` (less the margin).
const DUE: &str = "s.workspace_id = e.workspace_id
    AND (e.session_id IS NULL OR s.id = e.session_id)
    AND (CASE WHEN c.webhook_id IS NULL
              THEN s.created_at >= e.since - make_interval(secs => $margin)
              ELSE s.last_seq > c.delivered_seq AND (c.retry_at IS NULL OR c.retry_at <= $now)
         END)";

/// `DUE` with its parameters numbered.
fn due(now: usize, margin: usize) -> String {
    DUE.replace("$margin", &format!("${margin}"))
        .replace("$now", &format!("${now}"))
}

fn margin_secs() -> f64 {
    // Whole minutes: exact as f64.
    #[expect(
        clippy::cast_precision_loss,
        reason = "a few minutes in seconds is exact in f64"
    )]
    let secs = WEBHOOK_SINCE_MARGIN.num_seconds() as f64;
    secs
}

/// Stored data this version cannot read.
fn corrupt(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::backend(error)
}

#[derive(FromRow)]
struct WebhookRow {
    id: Uuid,
    workspace_id: String,
    url: String,
    event_types: String,
    session_id: Option<Uuid>,
    description: Option<String>,
    format: String,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_expires_at: Option<DateTime<Utc>>,
    disabled_at: Option<DateTime<Utc>>,
    disabled_reason: Option<String>,
    since: DateTime<Utc>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i32,
}

impl TryFrom<WebhookRow> for WebhookEndpoint {
    type Error = StoreError;

    fn try_from(row: WebhookRow) -> Result<Self, StoreError> {
        let previous_secret = match (row.previous_secret, row.previous_secret_expires_at) {
            (Some(secret), Some(expires_at)) => Some(PreviousSecret {
                secret: WebhookSecret::new(secret),
                expires_at,
            }),
            (None, None) => None,
            _ => return Err(StoreError::Backend("a half-stored previous secret".into())),
        };
        let disabled = match (row.disabled_at, row.disabled_reason.as_deref()) {
            (Some(at), Some(reason)) => Some(Disabled {
                at,
                reason: reason.parse().map_err(corrupt)?,
            }),
            (None, None) => None,
            _ => return Err(StoreError::Backend("a half-stored disabled state".into())),
        };
        Ok(Self::restore(StoredWebhook {
            id: WebhookId::from_uuid(row.id),
            workspace_id: WorkspaceId::parse(&row.workspace_id).map_err(corrupt)?,
            url: WebhookUrl::parse(&row.url).map_err(corrupt)?,
            event_types: WebhookEventTypes::parse(row.event_types.split(' ')).map_err(corrupt)?,
            session_id: row.session_id.map(SessionId::from_uuid),
            description: row
                .description
                .as_deref()
                .map(WebhookDescription::parse)
                .transpose()
                .map_err(corrupt)?,
            format: row.format.parse().map_err(corrupt)?,
            secret: WebhookSecret::new(row.secret),
            previous_secret,
            disabled,
            since: row.since,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: u32::try_from(row.version).map_err(corrupt)?,
        }))
    }
}

#[derive(FromRow)]
struct DeliveryRow {
    id: Uuid,
    webhook_id: Uuid,
    session_id: Uuid,
    seq: i64,
    event_type: String,
    status: String,
    attempts: i32,
    created_at: DateTime<Utc>,
    last_attempt_at: Option<DateTime<Utc>>,
    next_attempt_at: Option<DateTime<Utc>>,
    response_status: Option<i32>,
    error: Option<String>,
    latency_ms: Option<i32>,
}

impl TryFrom<DeliveryRow> for WebhookDelivery {
    type Error = StoreError;

    fn try_from(row: DeliveryRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: WebhookDeliveryId::from_uuid(row.id),
            webhook_id: WebhookId::from_uuid(row.webhook_id),
            session_id: SessionId::from_uuid(row.session_id),
            seq: Seq::new(u64::try_from(row.seq).map_err(corrupt)?),
            event_type: row.event_type,
            status: row.status.parse().map_err(corrupt)?,
            attempts: u32::try_from(row.attempts).map_err(corrupt)?,
            created_at: row.created_at,
            last_attempt_at: row.last_attempt_at,
            next_attempt_at: row.next_attempt_at,
            response_status: row
                .response_status
                .map(u16::try_from)
                .transpose()
                .map_err(corrupt)?,
            error: row.error,
            latency_ms: row
                .latency_ms
                .map(u32::try_from)
                .transpose()
                .map_err(corrupt)?,
        })
    }
}

/// A backlog entry: the session, its cursor, and the pending delivery's columns
/// (all `NULL` when there is none).
#[derive(FromRow)]
struct BacklogRow {
    session: Uuid,
    delivered: i64,
    last_seq: i64,
    id: Option<Uuid>,
    webhook_id: Option<Uuid>,
    session_id: Option<Uuid>,
    seq: Option<i64>,
    event_type: Option<String>,
    status: Option<String>,
    attempts: Option<i32>,
    created_at: Option<DateTime<Utc>>,
    last_attempt_at: Option<DateTime<Utc>>,
    next_attempt_at: Option<DateTime<Utc>>,
    response_status: Option<i32>,
    error: Option<String>,
    latency_ms: Option<i32>,
}

impl TryFrom<BacklogRow> for WebhookBacklog {
    type Error = StoreError;

    fn try_from(row: BacklogRow) -> Result<Self, StoreError> {
        let pending = match (
            row.id,
            row.webhook_id,
            row.session_id,
            row.seq,
            row.event_type,
            row.status,
            row.attempts,
            row.created_at,
        ) {
            (
                Some(id),
                Some(webhook_id),
                Some(session_id),
                Some(seq),
                Some(event_type),
                Some(status),
                Some(attempts),
                Some(created_at),
            ) => Some(WebhookDelivery::try_from(DeliveryRow {
                id,
                webhook_id,
                session_id,
                seq,
                event_type,
                status,
                attempts,
                created_at,
                last_attempt_at: row.last_attempt_at,
                next_attempt_at: row.next_attempt_at,
                response_status: row.response_status,
                error: row.error,
                latency_ms: row.latency_ms,
            })?),
            _ => None,
        };
        Ok(Self {
            session_id: SessionId::from_uuid(row.session),
            delivered: Seq::new(u64::try_from(row.delivered).map_err(corrupt)?),
            last_seq: Seq::new(u64::try_from(row.last_seq).map_err(corrupt)?),
            pending,
        })
    }
}

fn event_types_text(endpoint: &WebhookEndpoint) -> String {
    endpoint
        .event_types()
        .iter()
        .map(tandem_domain::EventSelector::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

fn version(endpoint: &WebhookEndpoint) -> Result<i32, StoreError> {
    i32::try_from(endpoint.version()).map_err(corrupt)
}

/// Sets an endpoint's cursors at the current end of the log of every session it
/// hears of that is active or began after its `since` (less the margin).
async fn reset_cursors(
    tx: &mut Transaction<'_, Postgres>,
    endpoint: &WebhookEndpoint,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM webhook_cursors WHERE webhook_id = $1")
        .bind(endpoint.id().as_uuid())
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    sqlx::query(
        "INSERT INTO webhook_cursors (webhook_id, session_id, delivered_seq)
         SELECT $1, s.id, s.last_seq FROM sessions s
          WHERE s.workspace_id = $2 AND ($3::uuid IS NULL OR s.id = $3)
            AND (s.status = 'active' OR s.created_at >= $4)",
    )
    .bind(endpoint.id().as_uuid())
    .bind(endpoint.workspace_id().as_str())
    .bind(endpoint.session_id().map(|id| id.as_uuid()))
    .bind(endpoint.since() - WEBHOOK_SINCE_MARGIN)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl WebhookStore for PostgresStore {
    async fn insert_webhook(&self, endpoint: &WebhookEndpoint) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let previous = endpoint.previous_secret();
        let disabled = endpoint.disabled();
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, workspace_id, url, event_types, session_id,
                 description, format, secret, previous_secret, previous_secret_expires_at,
                 disabled_at, disabled_reason, since, created_at, updated_at, version)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 0)",
        )
        .bind(endpoint.id().as_uuid())
        .bind(endpoint.workspace_id().as_str())
        .bind(endpoint.url().as_str())
        .bind(event_types_text(endpoint))
        .bind(endpoint.session_id().map(|id| id.as_uuid()))
        .bind(endpoint.description().map(WebhookDescription::as_str))
        .bind(endpoint.format().as_str())
        .bind(endpoint.secret().expose())
        .bind(previous.map(|p| p.secret.expose()))
        .bind(previous.map(|p| p.expires_at))
        .bind(disabled.map(|d| d.at))
        .bind(disabled.map(|d| d.reason.as_str()))
        .bind(endpoint.since())
        .bind(endpoint.created_at())
        .bind(endpoint.updated_at())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        reset_cursors(&mut tx, endpoint).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }

    async fn webhook(&self, id: WebhookId) -> Result<WebhookEndpoint, StoreError> {
        let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhook_endpoints WHERE id = $1");
        let row: WebhookRow = sqlx::query_as(&sql)
            .bind(id.as_uuid())
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        row.try_into()
    }

    async fn webhooks(
        &self,
        workspace_id: &WorkspaceId,
        page: Page<WebhookId>,
    ) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let sql = format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhook_endpoints
              WHERE workspace_id = $1 AND ($2::uuid IS NULL OR id < $2)
              ORDER BY id DESC LIMIT $3"
        );
        let rows: Vec<WebhookRow> = sqlx::query_as(&sql)
            .bind(workspace_id.as_str())
            .bind(page.after.map(|id| id.as_uuid()))
            .bind(limit(page.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn update_webhook(
        &self,
        endpoint: &WebhookEndpoint,
        restart: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let previous = endpoint.previous_secret();
        let disabled = endpoint.disabled();
        let updated = sqlx::query(
            "UPDATE webhook_endpoints
                SET url = $3, event_types = $4, session_id = $5, description = $6, format = $7,
                    secret = $8, previous_secret = $9, previous_secret_expires_at = $10,
                    disabled_at = $11, disabled_reason = $12, since = $13, updated_at = $14,
                    version = version + 1
              WHERE id = $1 AND version = $2",
        )
        .bind(endpoint.id().as_uuid())
        .bind(version(endpoint)?)
        .bind(endpoint.url().as_str())
        .bind(event_types_text(endpoint))
        .bind(endpoint.session_id().map(|id| id.as_uuid()))
        .bind(endpoint.description().map(WebhookDescription::as_str))
        .bind(endpoint.format().as_str())
        .bind(endpoint.secret().expose())
        .bind(previous.map(|p| p.secret.expose()))
        .bind(previous.map(|p| p.expires_at))
        .bind(disabled.map(|d| d.at))
        .bind(disabled.map(|d| d.reason.as_str()))
        .bind(endpoint.since())
        .bind(endpoint.updated_at())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if updated.rows_affected() == 0 {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $1)")
                    .bind(endpoint.id().as_uuid())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
            return Err(if exists {
                StoreError::Conflict
            } else {
                StoreError::NotFound
            });
        }
        if restart {
            reset_cursors(&mut tx, endpoint).await?;
            sqlx::query(
                "UPDATE webhook_deliveries
                    SET status = 'failed', next_attempt_at = NULL,
                        error = 'abandoned: the endpoint was enabled again or moved to other sessions'
                  WHERE webhook_id = $1 AND status = 'pending'",
            )
            .bind(endpoint.id().as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }

    async fn delete_webhook(&self, id: WebhookId) -> Result<(), StoreError> {
        let deleted = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
            .bind(id.as_uuid())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn enabled_webhook_event_types(&self) -> Result<Vec<WebhookEventTypes>, StoreError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT event_types FROM webhook_endpoints WHERE disabled_at IS NULL")
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        rows.into_iter()
            .map(|(types,)| WebhookEventTypes::parse(types.split(' ')).map_err(corrupt))
            .collect()
    }

    async fn webhooks_due(
        &self,
        now: DateTime<Utc>,
        max: u32,
    ) -> Result<Vec<WebhookId>, StoreError> {
        let sql = format!(
            "SELECT e.id FROM webhook_endpoints e
               LEFT JOIN webhook_leases l ON l.webhook_id = e.id
              WHERE e.disabled_at IS NULL
                AND (l.webhook_id IS NULL OR l.expires_at <= $1)
                AND EXISTS (SELECT 1 FROM sessions s
                              LEFT JOIN webhook_cursors c ON c.webhook_id = e.id AND c.session_id = s.id
                             WHERE {})
              ORDER BY e.id LIMIT $2",
            due(1, 3)
        );
        let rows: Vec<(Uuid,)> = sqlx::query_as(&sql)
            .bind(now)
            .bind(limit(max))
            .bind(margin_secs())
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|(id,)| WebhookId::from_uuid(id))
            .collect())
    }

    async fn webhook_backlog(
        &self,
        id: WebhookId,
        now: DateTime<Utc>,
        max: u32,
    ) -> Result<Vec<WebhookBacklog>, StoreError> {
        let delivery: Vec<String> = DELIVERY_COLUMNS
            .split(',')
            .map(|column| format!("d.{}", column.trim()))
            .collect();
        let sql = format!(
            "SELECT s.id AS session, COALESCE(c.delivered_seq, 0) AS delivered, s.last_seq, {}
               FROM webhook_endpoints e
               JOIN sessions s ON s.workspace_id = e.workspace_id
               LEFT JOIN webhook_cursors c ON c.webhook_id = e.id AND c.session_id = s.id
               LEFT JOIN webhook_deliveries d
                      ON d.webhook_id = e.id AND d.session_id = s.id AND d.status = 'pending'
                     AND d.seq > COALESCE(c.delivered_seq, 0)
              WHERE e.id = $1 AND e.disabled_at IS NULL AND {}
              ORDER BY s.id, d.seq LIMIT $3",
            delivery.join(", "),
            due(2, 4)
        );
        let rows: Vec<BacklogRow> = sqlx::query_as(&sql)
            .bind(id.as_uuid())
            .bind(now)
            .bind(limit(max))
            .bind(margin_secs())
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        let mut backlog: Vec<WebhookBacklog> = Vec::with_capacity(rows.len());
        for row in rows {
            let entry = WebhookBacklog::try_from(row)?;
            // One entry per session: its first pending delivery is its next one.
            if backlog
                .last()
                .is_none_or(|last| last.session_id != entry.session_id)
            {
                backlog.push(entry);
            }
        }
        Ok(backlog)
    }

    async fn record_webhook_progress(
        &self,
        progress: &WebhookProgress,
        holder: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // The endpoint row first: an update of the endpoint waits for this
        // record, and a restart since the worker read the endpoint refuses it.
        let since: DateTime<Utc> =
            sqlx::query_scalar("SELECT since FROM webhook_endpoints WHERE id = $1 FOR UPDATE")
                .bind(progress.webhook_id.as_uuid())
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
        if since != progress.since {
            return Err(StoreError::Conflict);
        }
        let lease: Option<String> = sqlx::query_scalar(
            "SELECT holder FROM webhook_leases WHERE webhook_id = $1 FOR UPDATE",
        )
        .bind(progress.webhook_id.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if lease.as_deref() != Some(holder) {
            return Err(StoreError::LeaseLost);
        }
        sqlx::query(
            "INSERT INTO webhook_cursors (webhook_id, session_id, delivered_seq, retry_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (webhook_id, session_id) DO UPDATE
                SET delivered_seq = EXCLUDED.delivered_seq, retry_at = EXCLUDED.retry_at",
        )
        .bind(progress.webhook_id.as_uuid())
        .bind(progress.session_id.as_uuid())
        .bind(seq(progress.delivered))
        .bind(progress.retry_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if let Some(delivery) = &progress.delivery {
            upsert_delivery(&mut tx, delivery).await?;
        }
        if let Some(at) = progress.give_up_at {
            sqlx::query(
                "UPDATE webhook_endpoints
                    SET disabled_at = $2, disabled_reason = 'failing', updated_at = $2,
                        version = version + 1
                  WHERE id = $1 AND disabled_at IS NULL",
            )
            .bind(progress.webhook_id.as_uuid())
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }

    async fn acquire_webhook_lease(
        &self,
        id: WebhookId,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let held: Option<(String,)> = sqlx::query_as(
            "INSERT INTO webhook_leases (webhook_id, holder, expires_at) VALUES ($1, $2, $4)
             ON CONFLICT (webhook_id) DO UPDATE
                SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
              WHERE webhook_leases.holder = EXCLUDED.holder OR webhook_leases.expires_at <= $3
          RETURNING holder",
        )
        .bind(id.as_uuid())
        .bind(holder)
        .bind(now)
        .bind(until)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(held.is_some())
    }

    async fn release_webhook_lease(&self, id: WebhookId, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM webhook_leases WHERE webhook_id = $1 AND holder = $2")
            .bind(id.as_uuid())
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn webhook_deliveries(
        &self,
        id: WebhookId,
        status: Option<DeliveryStatus>,
        page: Page<WebhookDeliveryId>,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
              WHERE webhook_id = $1 AND ($2::text IS NULL OR status = $2)
                AND ($3::uuid IS NULL OR id < $3)
              ORDER BY id DESC LIMIT $4"
        );
        let rows: Vec<DeliveryRow> = sqlx::query_as(&sql)
            .bind(id.as_uuid())
            .bind(status.map(DeliveryStatus::as_str))
            .bind(page.after.map(|id| id.as_uuid()))
            .bind(limit(page.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn webhook_delivery(&self, id: WebhookDeliveryId) -> Result<WebhookDelivery, StoreError> {
        let sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1");
        let row: DeliveryRow = sqlx::query_as(&sql)
            .bind(id.as_uuid())
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        row.try_into()
    }

    async fn update_webhook_delivery(&self, delivery: &WebhookDelivery) -> Result<(), StoreError> {
        let updated = sqlx::query(
            "UPDATE webhook_deliveries
                SET status = $2, attempts = $3, last_attempt_at = $4, next_attempt_at = $5,
                    response_status = $6, error = $7, latency_ms = $8
              WHERE id = $1",
        )
        .bind(delivery.id.as_uuid())
        .bind(delivery.status.as_str())
        .bind(count(delivery.attempts)?)
        .bind(delivery.last_attempt_at)
        .bind(delivery.next_attempt_at)
        .bind(delivery.response_status.map(i32::from))
        .bind(delivery.error.as_deref())
        .bind(delivery.latency_ms.map(count).transpose()?)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

fn count(value: u32) -> Result<i32, StoreError> {
    i32::try_from(value).map_err(corrupt)
}

async fn upsert_delivery(
    tx: &mut Transaction<'_, Postgres>,
    delivery: &WebhookDelivery,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, webhook_id, session_id, seq, event_type, status,
             attempts, created_at, last_attempt_at, next_attempt_at, response_status, error,
             latency_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (webhook_id, session_id, seq) DO UPDATE
            SET status = EXCLUDED.status, attempts = EXCLUDED.attempts,
                last_attempt_at = EXCLUDED.last_attempt_at,
                next_attempt_at = EXCLUDED.next_attempt_at,
                response_status = EXCLUDED.response_status, error = EXCLUDED.error,
                latency_ms = EXCLUDED.latency_ms",
    )
    .bind(delivery.id.as_uuid())
    .bind(delivery.webhook_id.as_uuid())
    .bind(delivery.session_id.as_uuid())
    .bind(seq(delivery.seq))
    .bind(delivery.event_type.as_str())
    .bind(delivery.status.as_str())
    .bind(count(delivery.attempts)?)
    .bind(delivery.created_at)
    .bind(delivery.last_attempt_at)
    .bind(delivery.next_attempt_at)
    .bind(delivery.response_status.map(i32::from))
    .bind(delivery.error.as_deref())
    .bind(delivery.latency_ms.map(count).transpose()?)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}
