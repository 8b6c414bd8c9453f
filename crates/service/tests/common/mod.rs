//! The harness of the service's integration tests: a real `Tandem` over a real
//! SQLite file in a temporary directory, the local event bus, and a clock the test
//! moves by hand. No mocks.
//!
//! Every helper goes through the public use cases, the way a client would: an
//! admin key bootstrapped and authenticated, sessions created with it, people
//! joining through invite tokens and acting through the tokens they got back.

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tandem_domain::{
    ApiKeyName, CommentText, DisplayName, Event, EventPayload, InviteRole, InviteSettings,
    Participant, PromptText, Scope, Seq, Session, SessionId, SessionMode, Summary, TextLimits,
    Title, Ttl, WorkspaceId,
};
use tandem_ports::testing::ManualClock;
use tandem_ports::{Clock, SessionStore};
use tandem_service::{Caller, LocalEventBus, NewSession, ServiceConfig, SessionCreated, Tandem};
use tandem_sqlite::SqliteStore;
use tempfile::TempDir;

/// Asserts that `$result` is an `Err` matching `$pattern`, showing what it was
/// otherwise.
macro_rules! assert_err {
    ($result:expr, $pattern:pat $(if $guard:expr)? $(,)?) => {
        match $result {
            Err($pattern) $(if $guard)? => {}
            other => panic!(
                "expected Err({}), got {other:?}",
                stringify!($pattern)
            ),
        }
    };
}
pub(crate) use assert_err;

/// A running service over its own database file.
pub(crate) struct Harness {
    pub(crate) tandem: Tandem,
    /// The store under the service, to check what was committed.
    store: Arc<dyn SessionStore>,
    /// The event bus under the service.
    pub(crate) bus: Arc<LocalEventBus>,
    pub(crate) clock: Arc<ManualClock>,
    /// The bootstrap admin key of workspace `default` (absent in `bare` harnesses).
    pub(crate) admin: Option<Caller>,
    _dir: Option<TempDir>,
}

impl Harness {
    /// A service with a fresh database and an authenticated admin key.
    pub(crate) async fn new() -> Self {
        Self::bare().await.with_admin().await
    }

    /// A service with a fresh database and no API key at all.
    pub(crate) async fn bare() -> Self {
        Self::sqlite(ServiceConfig::default()).await
    }

    /// A service with these settings over a fresh SQLite file, and no API key.
    pub(crate) async fn sqlite(config: ServiceConfig) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open_file(&dir.path().join("t.db"))
            .await
            .expect("open the SQLite store");
        Self::over(Arc::new(store), config, Some(dir))
    }

    /// A service with these settings over `store` (migrated, empty), and no API
    /// key.
    pub(crate) fn over(
        store: Arc<dyn SessionStore>,
        config: ServiceConfig,
        dir: Option<TempDir>,
    ) -> Self {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let bus = Arc::new(LocalEventBus::new());
        let tandem = Tandem::new(Arc::clone(&store), bus.clone(), clock.clone(), config);
        Self {
            tandem,
            store,
            bus,
            clock,
            admin: None,
            _dir: dir,
        }
    }

    /// Bootstraps and authenticates the admin key of a bare harness.
    pub(crate) async fn with_admin(mut self) -> Self {
        let created = self
            .tandem
            .bootstrap_admin_key(None)
            .await
            .expect("bootstrap")
            .expect("the first bootstrap creates a key");
        let admin = self.caller(created.secret.expose()).await;
        self.admin = Some(admin);
        self
    }

    /// The admin key's caller.
    pub(crate) fn admin(&self) -> &Caller {
        self.admin.as_ref().expect("this harness has an admin key")
    }

    /// What the service's clock shows.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Moves the service's clock forward.
    pub(crate) fn advance(&self, by: TimeDelta) {
        self.clock.advance(by);
    }

    /// The store under the service, to check what was committed.
    pub(crate) fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// Authenticates a bearer token that must be valid.
    /// A departed participant's token works no more: either it is refused at
    /// once, or (recognised before, on this server) its next use is.
    pub(crate) async fn assert_token_gone(&self, token: &str, session: tandem_domain::SessionId) {
        match self.tandem.authenticate(token).await {
            Err(tandem_service::ServiceError::ParticipantGone) => {}
            Ok(caller) => {
                let used = self
                    .tandem
                    .list_comments(&caller, session, tandem_ports::Page::first(10))
                    .await;
                assert!(
                    matches!(used, Err(tandem_service::ServiceError::ParticipantGone)),
                    "a departed participant's token was used: {used:?}"
                );
            }
            Err(other) => panic!("expected ParticipantGone, got {other:?}"),
        }
    }

    pub(crate) async fn caller(&self, token: &str) -> Caller {
        self.tandem
            .authenticate(token)
            .await
            .expect("the token authenticates")
    }

    /// A key of `workspace` with `scopes`, authenticated.
    pub(crate) async fn key(&self, workspace: &str, scopes: &[Scope]) -> Caller {
        let created = self
            .tandem
            .issue_api_key(
                WorkspaceId::parse(workspace).expect("workspace"),
                ApiKeyName::parse(&format!("{workspace} key")).expect("key name"),
                scopes.iter().copied().collect::<BTreeSet<_>>(),
            )
            .await
            .expect("issue a key");
        self.caller(created.secret.expose()).await
    }

    /// A session created by the admin key with these choices.
    pub(crate) async fn create(&self, input: NewSession) -> SessionCreated {
        self.tandem
            .create_session(self.admin(), input)
            .await
            .expect("create a session")
    }

    /// A session in `mode`, with its host, a collaborator and a viewer present.
    pub(crate) async fn party(&self, mode: SessionMode) -> Party {
        let created = self
            .create(NewSession {
                mode: Some(mode),
                ..NewSession::default()
            })
            .await;
        let id = created.session.id;
        let host = self.caller(created.host_token.expose()).await;
        let collaborator = self
            .join(created.invite_token.expose(), "Collaborator")
            .await;
        let viewer_invite = self
            .tandem
            .create_invite(&host, id, invite(InviteRole::Viewer, None))
            .await
            .expect("a viewer invite");
        let viewer = self.join(viewer_invite.token.expose(), "Viewer").await;
        Party {
            id,
            host,
            collaborator,
            viewer,
            invite_token: created.invite_token.expose().to_owned(),
            created,
        }
    }

    /// Joins through an invite token that must work, and authenticates the new
    /// participant's token.
    pub(crate) async fn join(&self, invite_token: &str, display_name: &str) -> Member {
        let joined = self
            .tandem
            .join(invite_token, name(display_name), None)
            .await
            .expect("join");
        let caller = self.caller(joined.token.expose()).await;
        Member {
            participant: joined.participant,
            token: joined.token.expose().to_owned(),
            caller,
        }
    }

    /// The session as stored, without settling expiry.
    pub(crate) async fn stored(&self, id: SessionId) -> Session {
        self.store().session(id).await.expect("stored session")
    }

    /// A participant as stored.
    pub(crate) async fn stored_participant(&self, member: &Member) -> Participant {
        self.store()
            .participant(member.participant.id)
            .await
            .expect("stored participant")
    }

    /// The session's whole event log, straight from the store.
    pub(crate) async fn log(&self, id: SessionId) -> Vec<Event> {
        self.store()
            .events(id, Seq::ZERO, 10_000)
            .await
            .expect("events")
    }

    /// The types of the session's events, in log order.
    pub(crate) async fn log_types(&self, id: SessionId) -> Vec<&'static str> {
        types(&self.log(id).await)
    }

    /// How many events of `event_type` the session's log holds.
    pub(crate) async fn count(&self, id: SessionId, event_type: &str) -> usize {
        self.log_types(id)
            .await
            .iter()
            .filter(|t| **t == event_type)
            .count()
    }
}

/// A session with one participant of each role.
pub(crate) struct Party {
    pub(crate) id: SessionId,
    pub(crate) created: SessionCreated,
    pub(crate) host: Caller,
    pub(crate) collaborator: Member,
    pub(crate) viewer: Member,
    /// The session's first (collaborator) invite.
    pub(crate) invite_token: String,
}

impl Party {
    /// The host's participant id.
    pub(crate) fn host_id(&self) -> tandem_domain::ParticipantId {
        self.created.host.id
    }
}

/// A participant who joined, with the token they hold.
pub(crate) struct Member {
    pub(crate) participant: Participant,
    pub(crate) token: String,
    pub(crate) caller: Caller,
}

/// Event types, in order.
pub(crate) fn types(events: &[Event]) -> Vec<&'static str> {
    events
        .iter()
        .map(|event| event.payload.event_type())
        .collect()
}

/// The `session.closed` payloads of a log.
pub(crate) fn closings(events: &[Event]) -> Vec<&EventPayload> {
    events
        .iter()
        .map(|event| &event.payload)
        .filter(|payload| payload.ends_session())
        .collect()
}

/// Invite settings.
pub(crate) fn invite(role: InviteRole, max_uses: Option<u32>) -> InviteSettings {
    InviteSettings {
        role,
        max_uses: max_uses.map(|n| NonZeroU32::new(n).expect("max_uses > 0")),
        expires_in: None,
    }
}

pub(crate) fn name(text: &str) -> DisplayName {
    DisplayName::parse(text, &TextLimits::DEFAULT).expect("display name")
}

pub(crate) fn title(text: &str) -> Title {
    Title::parse(text, &TextLimits::DEFAULT).expect("title")
}

pub(crate) fn comment(text: &str) -> CommentText {
    CommentText::parse(text, &TextLimits::DEFAULT).expect("comment")
}

pub(crate) fn prompt(text: &str) -> PromptText {
    PromptText::parse(text, &TextLimits::DEFAULT).expect("prompt")
}

pub(crate) fn summary(text: &str) -> Summary {
    Summary::parse(text, &TextLimits::DEFAULT).expect("summary")
}

pub(crate) fn ttl(text: &str) -> Ttl {
    Ttl::parse(text).expect("ttl")
}
