//! The storage port. One trait holds all persistence so that an adapter can write
//! a state change and the events it emits in one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tandem_domain::{
    AgentState, ApiKey, ApiKeyId, Comment, CommentId, DomainError, Event, Invite, InviteId,
    NewEvent, Participant, ParticipantId, PermissionRequest, PermissionRequestId, Prompt, PromptId,
    PromptStatus, Seq, Session, SessionId, SessionStatus, WorkspaceCleanup, WorkspaceId,
};

use crate::token::TokenHash;
use crate::webhook::WebhookStore;

/// Why a store operation failed. Adapters map their database's errors onto these.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record asked for does not exist (or, for a change, its session).
    #[error("not found")]
    NotFound,
    /// A change was refused because its session has ended; nothing was written.
    #[error("the session is no longer active")]
    SessionInactive,
    /// An update's `version` no longer matches the stored row: someone else changed
    /// it first. Nothing was written.
    #[error("the record was changed concurrently")]
    Conflict,
    /// An insert collides with an existing record (same id or same token hash).
    /// Nothing was written.
    #[error("a record with the same key already exists")]
    Duplicate,
    /// The plan of `apply_planned` refused: a domain rule said no. Nothing was written.
    #[error("refused: {0}")]
    Refused(DomainError),
    /// A change made under an agent lease (`Change::under_lease`) whose holder no
    /// longer holds it: another replica took the session's agent over. Nothing
    /// was written.
    #[error("the agent lease is held by another replica")]
    LeaseLost,
    /// The database failed or holds data this version cannot read.
    #[error("storage failure: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Wraps any backend failure.
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(error))
    }
}

/// The longest name a lease holder may have, in bytes (Postgres keeps at most
/// 63 bytes of a connection's `application_name`).
pub const MAX_LEASE_HOLDER_LEN: usize = 63;

/// Whether `holder` is a valid lease holder's name (see
/// [`SessionStore::register_lease_holder`]).
pub fn is_valid_lease_holder(holder: &str) -> bool {
    !holder.is_empty()
        && holder.len() <= MAX_LEASE_HOLDER_LEN
        && holder.bytes().all(|byte| byte.is_ascii_graphic())
}

/// One record written as part of a `Change`.
///
/// Inserts create a record with `version` 0 (the value in the entity is ignored).
/// Updates replace a record only if its stored `version` equals the entity's
/// `version` (the one that was read), and store `version + 1`; otherwise the whole
/// change fails with `StoreError::Conflict`. `Session`'s `last_seq` and
/// `last_activity_at` are never written from here: the store maintains them.
#[derive(Debug, Clone)]
pub enum Write {
    InsertSession(Session),
    UpdateSession(Session),
    InsertParticipant {
        participant: Participant,
        token_hash: TokenHash,
    },
    UpdateParticipant(Participant),
    InsertInvite {
        invite: Invite,
        token_hash: TokenHash,
    },
    UpdateInvite(Invite),
    /// Counts one more use of the invite (as read; its `version` is ignored, since
    /// uses commute), atomically: fails the change with `Conflict` if the stored
    /// invite is revoked or has no use left.
    RedeemInvite(Invite),
    InsertComment(Comment),
    InsertPrompt(Prompt),
    UpdatePrompt(Prompt),
    InsertPermissionRequest(PermissionRequest),
    UpdatePermissionRequest(PermissionRequest),
    /// The session's agent state, when its first agent started (`Duplicate` if
    /// the session has one).
    InsertAgentState(AgentState),
    UpdateAgentState(AgentState),
}

impl Write {
    /// The session the written record belongs to.
    pub fn session_id(&self) -> SessionId {
        match self {
            Self::InsertSession(session) | Self::UpdateSession(session) => session.id,
            Self::InsertParticipant { participant, .. } | Self::UpdateParticipant(participant) => {
                participant.session_id
            }
            Self::InsertInvite { invite, .. }
            | Self::UpdateInvite(invite)
            | Self::RedeemInvite(invite) => invite.session_id,
            Self::InsertComment(comment) => comment.session_id,
            Self::InsertPrompt(prompt) | Self::UpdatePrompt(prompt) => prompt.session_id,
            Self::InsertPermissionRequest(request) | Self::UpdatePermissionRequest(request) => {
                request.session_id
            }
            Self::InsertAgentState(state) | Self::UpdateAgentState(state) => state.session_id,
        }
    }
}

/// A state change of one session: the records it writes and the events it emits,
/// committed together or not at all.
#[derive(Debug, Clone)]
pub struct Change {
    pub session_id: SessionId,
    /// Records `last_activity_at = max(last_activity_at, this)` on the session.
    pub activity_at: Option<DateTime<Utc>>,
    pub writes: Vec<Write>,
    pub events: Vec<NewEvent>,
    /// When set, the change is written only while this holder holds the
    /// session's agent lease (see [`SessionStore::acquire_agent_lease`]).
    pub lease_holder: Option<String>,
}

impl Change {
    /// An empty change of `session_id`.
    pub fn new(session_id: SessionId) -> Self {
        Self {
            session_id,
            activity_at: None,
            writes: Vec::new(),
            events: Vec::new(),
            lease_holder: None,
        }
    }

    /// Writes the change only while `holder` holds the session's agent lease,
    /// else fails with `StoreError::LeaseLost`: what a replica's prompt runner
    /// writes, so that a runner that lost its lease (paused, cut off) cannot add
    /// to the log after another replica took the session's agent over.
    #[must_use]
    pub fn under_lease(mut self, holder: impl Into<String>) -> Self {
        self.lease_holder = Some(holder.into());
        self
    }

    /// Adds a write.
    #[must_use]
    pub fn write(mut self, write: Write) -> Self {
        self.writes.push(write);
        self
    }

    /// Adds events, in order.
    #[must_use]
    pub fn events(mut self, events: impl IntoIterator<Item = NewEvent>) -> Self {
        self.events.extend(events);
        self
    }

    /// Checks that every write belongs to the change's session, so that a change can
    /// never put records or events into another session's log. Adapters call this
    /// before writing.
    pub fn ensure_single_session(&self) -> Result<(), StoreError> {
        if self
            .writes
            .iter()
            .all(|write| write.session_id() == self.session_id)
        {
            Ok(())
        } else {
            Err(StoreError::Backend(
                "a change wrote a record of another session".into(),
            ))
        }
    }

    /// Counts the change as session activity at `at` (participant writes, agent output).
    #[must_use]
    pub fn activity(mut self, at: DateTime<Utc>) -> Self {
        self.activity_at = Some(at);
        self
    }
}

/// A session's unfinished work, read under the session's lock by `apply_planned`.
#[derive(Debug, Clone)]
pub struct OpenWork {
    pub session: Session,
    /// Its `queued` and `running` prompts, oldest first.
    pub prompts: Vec<Prompt>,
    /// Its permission requests still waiting for an answer, oldest first.
    pub permission_requests: Vec<PermissionRequest>,
}

/// Plans a change from a session's open work; `Ok(None)` writes nothing.
pub type Plan<'a> = Box<dyn FnOnce(OpenWork) -> Result<Option<Change>, DomainError> + Send + 'a>;

/// Who a stream ticket stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketHolder {
    Participant(ParticipantId),
    ApiKey(ApiKeyId),
}

/// A one-use ticket to open a session's event stream (for browsers' `EventSource`,
/// which cannot send an `Authorization` header). The secret is stored only hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamTicket {
    pub session_id: SessionId,
    pub holder: TicketHolder,
    pub expires_at: DateTime<Utc>,
}

/// A keyset page request: items strictly after `after`, at most `limit` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page<C> {
    pub after: Option<C>,
    pub limit: u32,
}

impl<C> Page<C> {
    /// The first page.
    pub const fn first(limit: u32) -> Self {
        Self { after: None, limit }
    }
}

/// Which sessions `SessionStore::sessions` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFilter {
    pub workspace_id: WorkspaceId,
    pub status: Option<SessionStatus>,
}

/// Which prompts `SessionStore::prompts` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptFilter {
    pub session_id: SessionId,
    pub status: Option<PromptStatus>,
}

/// All of Tandem's persistence (webhooks' in the [`WebhookStore`] part).
///
/// Every method is atomic. Reads see only committed data. Every adapter must pass
/// the contract suite in `tandem_ports::testing` (feature `testing`), which pins
/// down the behaviour documented here.
#[async_trait]
pub trait SessionStore: WebhookStore + Send + Sync + 'static {
    // ----- writes -----

    /// Commits `change` in one transaction and returns its events as stored.
    ///
    /// Events get consecutive `seq` numbers after the session's `last_seq`, allocated
    /// from the session row inside the transaction, so concurrent changes of one
    /// session never leave a gap or a duplicate. The session's `last_seq` (and, with
    /// `activity_at`, `last_activity_at`) is updated in the same transaction.
    ///
    /// Errors, each leaving nothing behind: `NotFound` if the session does not exist
    /// (and the change does not insert it); `SessionInactive` if the session has
    /// ended — no event is ever appended after `session.closed`, except by the
    /// change that ends the session; `Conflict` if an update's version is stale or
    /// its record is missing, or an invite cannot be redeemed; `Duplicate` on an insert of an existing id or token;
    /// `LeaseLost` if the change is `under_lease` of a holder that no longer holds
    /// the session's agent lease.
    async fn apply(&self, change: Change) -> Result<Vec<Event>, StoreError>;

    /// Reads the session's open work with the session locked against every other
    /// change, lets `plan` build a change from it, and commits that change in the
    /// same transaction. Nothing can slip in between the read and the write, so a
    /// change that must cover all open work (ending a session) does, without retries.
    ///
    /// Errors: `NotFound` if there is no such session; `Refused` with the plan's
    /// error; otherwise those of `apply`.
    async fn apply_planned(
        &self,
        session_id: SessionId,
        plan: Plan<'_>,
    ) -> Result<Vec<Event>, StoreError>;

    // ----- sessions -----

    /// The session with this id; `NotFound` if there is none.
    async fn session(&self, id: SessionId) -> Result<Session, StoreError>;

    /// A workspace's sessions, newest first (by id), after the cursor.
    async fn sessions(
        &self,
        filter: &SessionFilter,
        page: Page<SessionId>,
    ) -> Result<Vec<Session>, StoreError>;

    /// Active sessions that reached their absolute expiry or their idle timeout at
    /// `now`, oldest deadline first, at most `limit`.
    async fn sessions_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Session>, StoreError>;

    // ----- participants -----

    /// The participant with this id; `NotFound` if there is none.
    async fn participant(&self, id: ParticipantId) -> Result<Participant, StoreError>;

    /// A session and one of its participants, read together in one round trip:
    /// what a participant's write is authorized against. `NotFound` if the
    /// session does not exist or the participant is not one of its.
    async fn session_with_participant(
        &self,
        session_id: SessionId,
        participant_id: ParticipantId,
    ) -> Result<(Session, Participant), StoreError>;

    /// The participant holding this token (present or not: the caller decides);
    /// `NotFound` if no participant has it.
    async fn participant_by_token(&self, token_hash: &TokenHash)
    -> Result<Participant, StoreError>;

    /// Every participant of a session, present or not, in join order.
    async fn participants(&self, session_id: SessionId) -> Result<Vec<Participant>, StoreError>;

    // ----- invites -----

    /// The invite with this id; `NotFound` if there is none.
    async fn invite(&self, id: InviteId) -> Result<Invite, StoreError>;

    /// The invite with this token, usable or not; `NotFound` if none has it.
    async fn invite_by_token(&self, token_hash: &TokenHash) -> Result<Invite, StoreError>;

    /// Every invite of a session, in creation order.
    async fn invites(&self, session_id: SessionId) -> Result<Vec<Invite>, StoreError>;

    // ----- comments -----

    /// A session's comments in posting order, after the cursor.
    async fn comments(
        &self,
        session_id: SessionId,
        page: Page<CommentId>,
    ) -> Result<Vec<Comment>, StoreError>;

    // ----- prompts -----

    /// The prompt with this id; `NotFound` if there is none.
    async fn prompt(&self, id: PromptId) -> Result<Prompt, StoreError>;

    /// A session's prompts in submission order, after the cursor.
    async fn prompts(
        &self,
        filter: &PromptFilter,
        page: Page<PromptId>,
    ) -> Result<Vec<Prompt>, StoreError>;

    /// The prompt that runs next in a session: the `queued` prompt that was queued
    /// first (ties broken by id); `None` if the queue is empty.
    async fn next_queued_prompt(&self, session_id: SessionId)
    -> Result<Option<Prompt>, StoreError>;

    /// Prompts in `status` across all sessions, oldest first, at most `limit`
    /// (used at start-up to find prompts a previous process left running).
    async fn prompts_in_status(
        &self,
        status: PromptStatus,
        limit: u32,
    ) -> Result<Vec<Prompt>, StoreError>;

    // ----- agent permission requests -----

    /// The permission request with this id; `NotFound` if there is none.
    async fn permission_request(
        &self,
        id: PermissionRequestId,
    ) -> Result<PermissionRequest, StoreError>;

    /// A prompt's permission requests still waiting for an answer, oldest first.
    async fn open_permission_requests(
        &self,
        prompt_id: PromptId,
    ) -> Result<Vec<PermissionRequest>, StoreError>;

    // ----- the session's agent -----

    /// The session's agent state; `None` if no agent ever started for it.
    async fn agent_state(&self, session_id: SessionId) -> Result<Option<AgentState>, StoreError>;

    /// Records what became of the session's own workspace once the session has
    /// ended (so it is written although the session is no longer active, and
    /// emits no event); bumps the state's version. `NotFound` if the session has
    /// no agent state.
    async fn record_workspace_cleanup(
        &self,
        session_id: SessionId,
        cleanup: WorkspaceCleanup,
    ) -> Result<(), StoreError>;

    /// Ended sessions whose own workspace (a directory or worktree, not a shared
    /// one) has no recorded cleanup yet, and whose agent lease is free or expired
    /// at `now`: workspaces nobody is cleaning up. At most `limit`.
    async fn sessions_awaiting_cleanup(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SessionId>, StoreError>;

    // ----- events -----

    /// A session's events with `seq` > `after`, in `seq` order, at most `limit`.
    async fn events(
        &self,
        session_id: SessionId,
        after: Seq,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError>;

    // ----- API keys -----

    /// Stores a new API key under the hash of its secret; `Duplicate` if the id or
    /// the hash exists.
    async fn insert_api_key(&self, key: &ApiKey, token_hash: &TokenHash) -> Result<(), StoreError>;

    /// Inserts `key` only if no unrevoked admin key exists yet; returns whether it
    /// was inserted. Atomic, so that two replicas starting at once bootstrap once.
    async fn insert_first_admin_key(
        &self,
        key: &ApiKey,
        token_hash: &TokenHash,
    ) -> Result<bool, StoreError>;

    /// The API key with this secret, revoked or not; `NotFound` if none has it.
    async fn api_key_by_token(&self, token_hash: &TokenHash) -> Result<ApiKey, StoreError>;

    /// The API key with this id; `NotFound` if there is none.
    async fn api_key(&self, id: ApiKeyId) -> Result<ApiKey, StoreError>;

    /// API keys, newest first, after the cursor; of one workspace or of all.
    async fn api_keys(
        &self,
        workspace_id: Option<&WorkspaceId>,
        page: Page<ApiKeyId>,
    ) -> Result<Vec<ApiKey>, StoreError>;

    /// Marks a key revoked at `at`; `NotFound` if there is no such key, `Conflict`
    /// if it was already revoked.
    async fn revoke_api_key(&self, id: ApiKeyId, at: DateTime<Utc>) -> Result<(), StoreError>;

    // ----- stream tickets -----

    /// Stores a new stream ticket under the hash of its secret.
    async fn insert_stream_ticket(
        &self,
        token_hash: &TokenHash,
        ticket: &StreamTicket,
    ) -> Result<(), StoreError>;

    /// Uses a ticket up, atomically: returns it if it exists, was never used and has
    /// not expired at `now`; otherwise `NotFound` (and a second use always fails).
    async fn redeem_stream_ticket(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<StreamTicket, StoreError>;

    /// Deletes the tickets that expired before `now`, used or not (they can never
    /// open a stream again); returns how many.
    async fn purge_stream_tickets(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    // ----- agent leases -----

    /// Declares `holder` (a process's name on agent leases: printable ASCII, at
    /// most [`MAX_LEASE_HOLDER_LEN`] bytes) alive until this store is closed or
    /// its process ends. A lease whose holder is not alive is free at once, so
    /// that the sessions a crashed process was running are taken over (by its
    /// own restart or another replica) without waiting for the lease to expire;
    /// a holder never declared is never alive.
    ///
    /// How aliveness is known is the adapter's: a connection of the holder's own
    /// that the database sees (Postgres), or the process itself, which alone may
    /// run prompts on the database while it is open (SQLite; `Backend` if another
    /// process already does).
    async fn register_lease_holder(&self, holder: &str) -> Result<(), StoreError>;

    /// Takes or renews the lease on running `session_id`'s agent for `holder`, valid
    /// until `until`. True if `holder` holds it now: it was free, had expired at
    /// `now`, its holder was not alive (see [`Self::register_lease_holder`]), or it
    /// was already `holder`'s. Several replicas call this; at most one live
    /// holder holds a session's lease at any time.
    async fn acquire_agent_lease(
        &self,
        session_id: SessionId,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Gives up `holder`'s lease on `session_id`'s agent; nothing if another holds it.
    async fn release_agent_lease(
        &self,
        session_id: SessionId,
        holder: &str,
    ) -> Result<(), StoreError>;

    /// Active sessions with queued or running prompts whose agent lease is free,
    /// expired at `now`, or held by a holder that is not alive: work no replica
    /// is doing. At most `limit`.
    async fn sessions_awaiting_agent(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SessionId>, StoreError>;

    // ----- operations -----

    /// Checks that the database answers (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Closes the store's connections, waiting for those in use to be returned;
    /// for a graceful shutdown. Later calls fail.
    async fn close(&self);
}
