//! Webhooks: a workspace's admins (API keys with `webhooks:write`) register
//! endpoints that hear of its sessions' events; the [`WebhookDispatcher`]
//! delivers them from the durable log, signed, in order per session, at least
//! once.

mod dispatch;
mod message;

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use tandem_domain::{
    ApiKey, DeliveryStatus, NewWebhook, RetryPolicy, Scope, Seq, SessionId, WebhookDelivery,
    WebhookDeliveryId, WebhookEndpoint, WebhookId, WebhookPatch, WebhookSecret, WebhookUrl,
};
use tandem_ports::{Page, StoreError, WebhookSender};
use tokio::sync::Notify;
use uuid::Uuid;

pub use dispatch::WebhookDispatcher;

use crate::credentials::Caller;
use crate::error::{Resource, ServiceError, read_error};
use crate::{Tandem, retry_on_conflict};

/// Settings of webhooks.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The server's public base URL (no trailing slash), for links in messages.
    pub public_url: String,
    /// How failed deliveries are retried, and when they are given up.
    pub retry: RetryPolicy,
    /// How long a replaced secret keeps signing requests beside the new one.
    pub secret_grace: Duration,
    /// How often to look for deliveries to make (events committed by other
    /// replicas, retries that fell due); this process's commits wake the
    /// dispatcher at once.
    pub scan_interval: Duration,
    /// How long a replica's lease on delivering to an endpoint lasts without
    /// renewal; longer than any one request may take.
    pub lease_ttl: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".to_owned(),
            retry: RetryPolicy::DEFAULT,
            secret_grace: Duration::from_secs(24 * 3600),
            scan_interval: Duration::from_secs(1),
            lease_ttl: Duration::from_secs(60),
        }
    }
}

/// Webhook settings and the outbound sender, shared by every clone of `Tandem`.
pub(crate) struct Webhooks {
    pub(crate) sender: Arc<dyn WebhookSender>,
    pub(crate) config: WebhookConfig,
    /// Wakes the dispatcher (endpoints created or enabled on this server).
    pub(crate) wake: Arc<Notify>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for Webhooks {
    fn default() -> Self {
        Self {
            sender: Arc::new(tandem_ports::NoWebhooks),
            config: WebhookConfig::default(),
            wake: Arc::default(),
        }
    }
}

/// A new endpoint, or one whose secret was rotated, with its secret: shown to
/// the caller this once.
#[derive(Debug)]
pub struct WebhookWithSecret {
    pub webhook: WebhookEndpoint,
    pub secret: WebhookSecret,
}

impl Tandem {
    /// Sends webhooks with `sender` under `config` (without this, every webhook
    /// URL is refused).
    #[must_use]
    pub fn with_webhooks(mut self, sender: Arc<dyn WebhookSender>, config: WebhookConfig) -> Self {
        self.webhooks = Arc::new(Webhooks {
            sender,
            config,
            wake: Arc::clone(&self.webhooks.wake),
        });
        self
    }

    /// The webhook settings.
    pub fn webhook_config(&self) -> &WebhookConfig {
        &self.webhooks.config
    }

    /// Registers an endpoint for the key's workspace (scope `webhooks:write`).
    /// It hears of events from now on; its secret is returned this once.
    #[tracing::instrument(skip_all, fields(workspace))]
    pub async fn create_webhook(
        &self,
        caller: &Caller,
        new: NewWebhook,
    ) -> Result<WebhookWithSecret, ServiceError> {
        let key = Self::require_key(caller, Scope::WebhooksWrite)?;
        tracing::Span::current().record("workspace", key.workspace_id.as_str());
        if let Some(session_id) = new.session_id {
            self.check_session_of(key, session_id).await?;
        }
        self.check_url(&new.url).await?;
        let secret = message::new_secret();
        let webhook = WebhookEndpoint::create(
            WebhookId::from_uuid(Uuid::now_v7()),
            key.workspace_id.clone(),
            new,
            secret.clone(),
            self.now(),
        );
        self.store
            .insert_webhook(&webhook)
            .await
            .map_err(ServiceError::Store)?;
        tracing::info!(webhook_id = %webhook.id(), "webhook created");
        self.webhooks.wake.notify_one();
        Ok(WebhookWithSecret { webhook, secret })
    }

    /// The key's workspace's endpoints, newest first (scope `webhooks:read`).
    pub async fn list_webhooks(
        &self,
        caller: &Caller,
        page: Page<WebhookId>,
    ) -> Result<Vec<WebhookEndpoint>, ServiceError> {
        let key = Self::require_key(caller, Scope::WebhooksRead)?;
        self.store
            .webhooks(&key.workspace_id, page)
            .await
            .map_err(ServiceError::Store)
    }

    /// One endpoint of the key's workspace (scope `webhooks:read`).
    pub async fn get_webhook(
        &self,
        caller: &Caller,
        id: WebhookId,
    ) -> Result<WebhookEndpoint, ServiceError> {
        let key = Self::require_key(caller, Scope::WebhooksRead)?;
        self.visible_webhook(key, id).await
    }

    /// Changes an endpoint (scope `webhooks:write`). Enabling it again, or
    /// pointing it at other sessions, starts its deliveries from now.
    #[tracing::instrument(skip_all, fields(webhook_id = %id))]
    pub async fn update_webhook(
        &self,
        caller: &Caller,
        id: WebhookId,
        patch: WebhookPatch,
    ) -> Result<WebhookEndpoint, ServiceError> {
        let key = Self::require_key(caller, Scope::WebhooksWrite)?;
        if let Some(Some(session_id)) = patch.session_id {
            self.check_session_of(key, session_id).await?;
        }
        if let Some(url) = &patch.url {
            self.check_url(url).await?;
        }
        let updated = retry_on_conflict!({
            let webhook = self.visible_webhook(key, id).await?;
            let updated = webhook.update(patch.clone(), self.now());
            self.store
                .update_webhook(&updated.endpoint, updated.restarted)
                .await
                .map_err(|error| match error {
                    StoreError::Conflict => ServiceError::Conflict,
                    StoreError::NotFound => ServiceError::NotFound(Resource::Webhook),
                    other @ (StoreError::SessionInactive
                    | StoreError::Duplicate
                    | StoreError::Refused(_)
                    | StoreError::LeaseLost
                    | StoreError::Backend(_)) => ServiceError::Store(other),
                })
                .map(|()| updated)
        })?;
        tracing::info!(
            enabled = updated.endpoint.is_enabled(),
            restarted = updated.restarted,
            "webhook updated"
        );
        self.webhooks.wake.notify_one();
        self.visible_webhook(key, id).await
    }

    /// Deletes an endpoint with its deliveries (scope `webhooks:write`).
    pub async fn delete_webhook(&self, caller: &Caller, id: WebhookId) -> Result<(), ServiceError> {
        let key = Self::require_key(caller, Scope::WebhooksWrite)?;
        self.visible_webhook(key, id).await?;
        self.store
            .delete_webhook(id)
            .await
            .map_err(read_error(Resource::Webhook))?;
        tracing::info!(webhook_id = %id, "webhook deleted");
        Ok(())
    }

    /// Replaces an endpoint's signing secret (scope `webhooks:write`); the old
    /// one keeps signing beside it for the configured grace. The new secret is
    /// returned this once.
    #[tracing::instrument(skip_all, fields(webhook_id = %id))]
    pub async fn rotate_webhook_secret(
        &self,
        caller: &Caller,
        id: WebhookId,
    ) -> Result<WebhookWithSecret, ServiceError> {
        let key = Self::require_key(caller, Scope::WebhooksWrite)?;
        let grace =
            TimeDelta::from_std(self.webhooks.config.secret_grace).unwrap_or(TimeDelta::MAX);
        let secret = message::new_secret();
        let webhook = retry_on_conflict!({
            let webhook = self.visible_webhook(key, id).await?;
            let rotated = webhook.rotate_secret(secret.clone(), grace, self.now());
            self.store
                .update_webhook(&rotated, false)
                .await
                .map_err(|error| match error {
                    StoreError::Conflict => ServiceError::Conflict,
                    StoreError::NotFound => ServiceError::NotFound(Resource::Webhook),
                    other @ (StoreError::SessionInactive
                    | StoreError::Duplicate
                    | StoreError::Refused(_)
                    | StoreError::LeaseLost
                    | StoreError::Backend(_)) => ServiceError::Store(other),
                })
                .map(|()| rotated)
        })?;
        tracing::info!("webhook secret rotated");
        Ok(WebhookWithSecret {
            webhook: self.visible_webhook(key, webhook.id()).await?,
            secret,
        })
    }

    /// An endpoint's deliveries, newest first, optionally of one status (scope
    /// `webhooks:read`).
    pub async fn list_webhook_deliveries(
        &self,
        caller: &Caller,
        id: WebhookId,
        status: Option<DeliveryStatus>,
        page: Page<WebhookDeliveryId>,
    ) -> Result<Vec<WebhookDelivery>, ServiceError> {
        let key = Self::require_key(caller, Scope::WebhooksRead)?;
        self.visible_webhook(key, id).await?;
        self.store
            .webhook_deliveries(id, status, page)
            .await
            .map_err(ServiceError::Store)
    }

    /// Attempts a failed delivery again, now, once (scope `webhooks:write`), and
    /// returns it as that attempt left it. It is sent as it was the first time
    /// (same `webhook-id`), whether or not the endpoint is enabled: a way to
    /// check an endpoint is back before enabling it.
    #[tracing::instrument(skip_all, fields(webhook_id = %id, delivery_id = %delivery_id))]
    pub async fn retry_webhook_delivery(
        &self,
        caller: &Caller,
        id: WebhookId,
        delivery_id: WebhookDeliveryId,
    ) -> Result<WebhookDelivery, ServiceError> {
        let key = Self::require_key(caller, Scope::WebhooksWrite)?;
        let webhook = self.visible_webhook(key, id).await?;
        let delivery = self
            .store
            .webhook_delivery(delivery_id)
            .await
            .map_err(read_error(Resource::WebhookDelivery))?;
        if delivery.webhook_id != id {
            return Err(ServiceError::NotFound(Resource::WebhookDelivery));
        }
        delivery.check_retryable()?;
        let event = self
            .store
            .events(
                delivery.session_id,
                Seq::new(delivery.seq.get().saturating_sub(1)),
                1,
            )
            .await
            .map_err(ServiceError::Store)?
            .into_iter()
            .next()
            .filter(|event| event.seq == delivery.seq)
            .ok_or(ServiceError::NotFound(Resource::WebhookDelivery))?;
        let (retried, _) = dispatch::attempt_again(self, &webhook, &event, delivery).await;
        self.store
            .update_webhook_delivery(&retried)
            .await
            .map_err(read_error(Resource::WebhookDelivery))?;
        tracing::info!(status = %retried.status, "webhook delivery retried by hand");
        Ok(retried)
    }

    /// The endpoint, if it belongs to the key's workspace; else "not found".
    async fn visible_webhook(
        &self,
        key: &ApiKey,
        id: WebhookId,
    ) -> Result<WebhookEndpoint, ServiceError> {
        let webhook = self
            .store
            .webhook(id)
            .await
            .map_err(read_error(Resource::Webhook))?;
        if webhook.workspace_id() == &key.workspace_id {
            Ok(webhook)
        } else {
            Err(ServiceError::NotFound(Resource::Webhook))
        }
    }

    /// An endpoint may hear of one session only if it is of its workspace: a
    /// session of another workspace is as unknown as one that never was.
    async fn check_session_of(&self, key: &ApiKey, id: SessionId) -> Result<(), ServiceError> {
        let not_found = || ServiceError::NotFound(Resource::Session);
        match self.store.session(id).await {
            Ok(session) if session.workspace_id == key.workspace_id => Ok(()),
            Ok(_) | Err(StoreError::NotFound) => Err(not_found()),
            Err(other) => Err(ServiceError::Store(other)),
        }
    }

    /// The outbound policy's verdict on a URL.
    async fn check_url(&self, url: &WebhookUrl) -> Result<(), ServiceError> {
        self.webhooks
            .sender
            .check(url)
            .await
            .map_err(|refused| ServiceError::WebhookUrlRefused(refused.0))
    }
}
