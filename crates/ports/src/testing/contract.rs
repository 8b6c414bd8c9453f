//! The storage contract: what every `SessionStore` adapter must do, written once
//! and run against each adapter (see `for_each_contract_test!`).
//!
//! Each function takes a store over a fresh, migrated, empty database and panics
//! on a broken promise.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::TimeDelta;
use tandem_domain::{
    Actor, AgentOutput, AgentOutputKind, ApiKey, ApiKeyId, ApiKeyName, CloseReason, Comment,
    CommentId, CommentText, EventPayload, EventType, InviteRole, NewEvent, ParticipantId,
    PermissionAsk, PermissionCause, PermissionOption, PermissionOptionKind, PermissionOutcome,
    PermissionPolicy, PermissionRequest, PermissionRequestId, Prompt, PromptStatus, Redactions,
    Scope, Seq, SessionId, SessionMode, SessionPatch, SessionSettings, SessionStatus, StopReason,
    Summary, TextLimits, Title, Ttl, WorkspaceId,
};
use tokio::task::JoinSet;
use uuid::Uuid;

pub use super::agent_state::{
    agent_states_round_trip_under_versions, workspace_cleanups_are_found_after_the_session_ended,
};
use super::fixtures::{
    NewSession, at, join, prompt_id, prompt_text, session, session_with, t0, token,
};
pub use super::groups::{
    a_refused_change_among_simultaneous_ones_fails_alone,
    simultaneous_changes_to_one_hot_session_and_many_cold_ones,
};
use crate::{Change, Page, PromptFilter, SessionFilter, SessionStore, StoreError, Write};

async fn create<S: SessionStore>(store: &S, new: &NewSession) {
    store
        .apply(new.change())
        .await
        .unwrap_or_else(|e| panic!("creating a session failed: {e}"));
}

fn comment(new: &NewSession, text: &str, secs: i64) -> (Comment, Change) {
    let created = &new.created;
    let transition = Comment::post(
        CommentId::from_uuid(Uuid::now_v7()),
        &created.session,
        &created.host,
        CommentText::parse(text, &TextLimits::DEFAULT).unwrap_or_else(|e| panic!("{e}")),
        at(secs),
    )
    .unwrap_or_else(|e| panic!("posting failed: {e}"));
    let change = Change::new(created.session.id)
        .write(Write::InsertComment(transition.state.clone()))
        .events(transition.events)
        .activity(at(secs));
    (transition.state, change)
}

fn submit(
    new: &NewSession,
    by: &tandem_domain::Participant,
    text: &str,
    secs: i64,
) -> (Prompt, Change) {
    let transition = Prompt::submit(
        prompt_id(),
        &new.created.session,
        by,
        prompt_text(text),
        at(secs),
    )
    .unwrap_or_else(|e| panic!("submitting failed: {e}"));
    let change = Change::new(new.created.session.id)
        .write(Write::InsertPrompt(transition.state.clone()))
        .events(transition.events)
        .activity(at(secs));
    (transition.state, change)
}

fn seqs(events: &[tandem_domain::Event]) -> Vec<u64> {
    events.iter().map(|event| event.seq.get()).collect()
}

/// A session, its host and its invite are stored together and read back exactly.
pub async fn creates_and_reads_a_session<S: SessionStore>(store: S) {
    let new = session();
    let events = store.apply(new.change()).await.expect("create");
    assert_eq!(seqs(&events), vec![1, 2]);
    assert_eq!(events[0].payload.event_type(), "session.created");
    assert_eq!(events[1].payload.event_type(), "participant.joined");

    let mut expected = new.created.session.clone();
    expected.last_seq = Seq::new(2);
    assert_eq!(
        store.session(expected.id).await.expect("read session"),
        expected
    );
    assert_eq!(
        store.participants(expected.id).await.expect("participants"),
        vec![new.created.host.clone()]
    );
    assert_eq!(
        store.invites(expected.id).await.expect("invites"),
        vec![new.created.invite.clone()]
    );
    assert_eq!(
        store
            .participant(new.created.host.id)
            .await
            .expect("participant"),
        new.created.host
    );
    assert_eq!(
        store
            .participant_by_token(&new.host_token)
            .await
            .expect("by token"),
        new.created.host
    );
    assert_eq!(
        store.invite(new.created.invite.id).await.expect("invite"),
        new.created.invite
    );
    assert_eq!(
        store
            .invite_by_token(&new.invite_token)
            .await
            .expect("invite by token"),
        new.created.invite
    );
    assert_eq!(
        store
            .events(expected.id, Seq::ZERO, 100)
            .await
            .expect("events"),
        events
    );
}

/// Every read by an unknown id or token answers `NotFound`.
pub async fn unknown_ids_are_not_found<S: SessionStore>(store: S) {
    let id = Uuid::now_v7();
    assert!(matches!(
        store.session(SessionId::from_uuid(id)).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.participant(ParticipantId::from_uuid(id)).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.participant_by_token(&token()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.invite(tandem_domain::InviteId::from_uuid(id)).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.invite_by_token(&token()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.prompt(tandem_domain::PromptId::from_uuid(id)).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .permission_request(PermissionRequestId::from_uuid(id))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.api_key(ApiKeyId::from_uuid(id)).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.api_key_by_token(&token()).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        store
            .events(SessionId::from_uuid(id), Seq::ZERO, 10)
            .await
            .expect("events")
            .is_empty()
    );
}

/// A change of a session that does not exist writes nothing and says `NotFound`.
pub async fn change_of_a_missing_session_is_not_found<S: SessionStore>(store: S) {
    let new = session();
    let (_, change) = comment(&new, "hello", 1);
    assert!(matches!(
        store.apply(change).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.session(new.created.session.id).await,
        Err(StoreError::NotFound)
    ));
}

/// Sequential changes number their events 1, 2, 3, ... and `last_seq` follows.
pub async fn events_are_numbered_from_one_without_gaps<S: SessionStore>(store: S) {
    let new = session();
    create(&store, &new).await;
    for i in 0..5 {
        let (_, change) = comment(&new, &format!("comment {i}"), i);
        let events = store.apply(change).await.expect("comment");
        assert_eq!(seqs(&events), vec![u64::try_from(i).expect("small") + 3]);
    }
    // A change with no events allocates nothing.
    let idle = Change::new(new.created.session.id);
    assert!(store.apply(idle).await.expect("empty change").is_empty());
    let all = store
        .events(new.created.session.id, Seq::ZERO, 100)
        .await
        .expect("events");
    assert_eq!(seqs(&all), (1..=7).collect::<Vec<_>>());
    assert_eq!(
        store
            .session(new.created.session.id)
            .await
            .expect("session")
            .last_seq,
        Seq::new(7)
    );
}

/// `events(after, limit)` pages through the log in `seq` order.
pub async fn events_page_after_a_seq<S: SessionStore>(store: S) {
    let new = session();
    create(&store, &new).await;
    for i in 0..10 {
        store
            .apply(comment(&new, &format!("c{i}"), i).1)
            .await
            .expect("comment");
    }
    let id = new.created.session.id;
    assert_eq!(
        seqs(&store.events(id, Seq::new(3), 4).await.expect("page")),
        vec![4, 5, 6, 7]
    );
    assert_eq!(
        seqs(&store.events(id, Seq::new(10), 100).await.expect("tail")),
        vec![11, 12]
    );
    assert!(
        store
            .events(id, Seq::new(12), 100)
            .await
            .expect("end")
            .is_empty()
    );
    assert!(
        store
            .events(id, Seq::new(99), 100)
            .await
            .expect("beyond")
            .is_empty()
    );
    // A cursor beyond anything storable is simply past the end.
    assert!(
        store
            .events(id, Seq::new(u64::MAX), 100)
            .await
            .expect("far beyond")
            .is_empty()
    );
}

/// 50 concurrent writers on one session produce `seq` 1..=N, no gap, no duplicate.
pub async fn concurrent_writers_get_gapless_seqs<S: SessionStore + Clone>(store: S) {
    const WRITERS: i64 = 50;
    let new = session();
    create(&store, &new).await;
    let mut tasks = JoinSet::new();
    for i in 0..WRITERS {
        let store = store.clone();
        let (_, change) = comment(&new, &format!("writer {i}"), i);
        tasks.spawn(async move { store.apply(change).await });
    }
    let mut returned = Vec::new();
    while let Some(result) = tasks.join_next().await {
        let events = result
            .expect("task")
            .expect("every concurrent write commits");
        returned.extend(seqs(&events));
    }
    returned.sort_unstable();
    let expected: Vec<u64> = (3..=u64::try_from(WRITERS).expect("small") + 2).collect();
    assert_eq!(returned, expected, "each writer got its own seq");
    let stored = store
        .events(new.created.session.id, Seq::ZERO, 1000)
        .await
        .expect("events");
    assert_eq!(seqs(&stored), (1..=52).collect::<Vec<_>>());
    assert_eq!(
        store
            .comments(new.created.session.id, Page::first(100))
            .await
            .expect("comments")
            .len(),
        50
    );
    assert_eq!(
        store
            .session(new.created.session.id)
            .await
            .expect("session")
            .last_seq,
        Seq::new(52)
    );
}

/// Many writers at once over several sessions, some of their changes refused (a
/// closed session, a duplicate id): each refused change fails alone, with its
/// own error, and every other change is written with gapless seqs.
pub async fn concurrent_changes_fail_alone<S: SessionStore + Clone>(store: S) {
    let open: Vec<NewSession> = (0..3).map(|_| session()).collect();
    let closed = session();
    for new in open.iter().chain([&closed]) {
        create(&store, new).await;
    }
    let ended = store
        .session(closed.created.session.id)
        .await
        .expect("session")
        .close(&closed.created.host, None, at(5))
        .expect("close");
    store
        .apply(
            Change::new(closed.created.session.id)
                .write(Write::UpdateSession(ended.state))
                .events(ended.events),
        )
        .await
        .expect("close");
    let (first, first_change) = comment(&open[0], "first", 6);
    store.apply(first_change).await.expect("first");

    let mut tasks = JoinSet::new();
    for round in 0..20 {
        for (n, new) in open.iter().enumerate() {
            let (_, change) = comment(new, &format!("{round}/{n}"), 10 + round);
            let store = store.clone();
            tasks.spawn(async move { ("ok", store.apply(change).await) });
        }
        let (_, late) = comment(&closed, "too late", 10 + round);
        let store_late = store.clone();
        tasks.spawn(async move { ("inactive", store_late.apply(late).await) });
        let again = Change::new(open[0].created.session.id)
            .write(Write::InsertComment(first.clone()))
            .events(comment(&open[0], "again", 10 + round).1.events);
        let store_again = store.clone();
        tasks.spawn(async move { ("duplicate", store_again.apply(again).await) });
    }
    while let Some(result) = tasks.join_next().await {
        match result.expect("task") {
            ("ok", Ok(_))
            | ("inactive", Err(StoreError::SessionInactive))
            | ("duplicate", Err(StoreError::Duplicate)) => {}
            (what, outcome) => panic!("a {what} change came back {outcome:?}"),
        }
    }
    for (n, new) in open.iter().enumerate() {
        let id = new.created.session.id;
        let comments = if n == 0 { 21 } else { 20 };
        let stored = store.events(id, Seq::ZERO, 1000).await.expect("events");
        assert_eq!(seqs(&stored), (1..=2 + comments).collect::<Vec<_>>());
        assert_eq!(
            store
                .comments(id, Page::first(100))
                .await
                .expect("comments")
                .len(),
            usize::try_from(comments).expect("small")
        );
        assert_eq!(
            store.session(id).await.expect("session").last_seq,
            Seq::new(2 + comments)
        );
    }
    let closed_log = store
        .events(closed.created.session.id, Seq::ZERO, 100)
        .await
        .expect("events");
    assert_eq!(
        closed_log.len(),
        3,
        "created, joined, closed: nothing after"
    );
}

/// A store that runs out of room part-way through concurrent writes (the caller's
/// `fill` makes it so, e.g. by capping the database's size): every change it
/// reports written is stored with its events, every change it reports failed left
/// nothing behind, and the log stays gapless. Not in `for_each_contract_test!`:
/// only an adapter that can make itself run out of room calls it.
pub async fn a_full_store_fails_only_what_it_did_not_store<S: SessionStore + Clone>(
    store: S,
    fill: impl AsyncFnOnce(&S),
) {
    let open: Vec<NewSession> = (0..4).map(|_| session()).collect();
    for new in &open {
        create(&store, new).await;
    }
    fill(&store).await;

    let big = "x".repeat(8 * 1024 - 16);
    let mut tasks = JoinSet::new();
    for round in 0..40 {
        for new in &open {
            let (comment, change) = comment(new, &format!("{round:04}{big}"), 10 + round);
            let store = store.clone();
            tasks.spawn(async move { (comment, store.apply(change).await) });
        }
    }
    let (mut stored, mut refused) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        let (comment, outcome) = result.expect("task");
        let kept = store
            .comments(comment.session_id, Page::first(1000))
            .await
            .expect("comments")
            .into_iter()
            .any(|c| c.id == comment.id);
        match outcome {
            Ok(events) => {
                assert!(kept, "a comment reported written is not stored");
                let last = events.last().expect("an event").seq;
                let log = store
                    .events(comment.session_id, Seq::new(last.get() - 1), 1)
                    .await
                    .expect("events");
                assert_eq!(log, events, "its event is not in the log as reported");
                stored += 1;
            }
            Err(StoreError::Backend(_)) => {
                assert!(!kept, "a comment reported failed is stored");
                refused += 1;
            }
            Err(other) => panic!("a full store should fail as a backend error, not {other:?}"),
        }
    }
    assert!(stored > 0, "nothing could be written at all");
    assert!(refused > 0, "the store never ran out of room");
    for new in &open {
        let id = new.created.session.id;
        let last_seq = store.session(id).await.expect("session").last_seq;
        let log = store.events(id, Seq::ZERO, 1000).await.expect("events");
        assert_eq!(seqs(&log), (1..=last_seq.get()).collect::<Vec<_>>());
        let comments = store
            .comments(id, Page::first(1000))
            .await
            .expect("comments");
        assert_eq!(
            comments.len() + 2,
            log.len(),
            "one event per stored comment"
        );
    }
}

/// Two hosts' approvals of one pending prompt, at once: exactly one succeeds, the
/// other gets `Conflict`, and one `prompt.approved` event is written.
pub async fn concurrent_approvals_exactly_one_wins<S: SessionStore + Clone>(store: S) {
    let new = session();
    create(&store, &new).await;
    let (joined, change) = join(&new.created, "Collaborator", at(1));
    store.apply(change).await.expect("join");
    let (pending, change) = submit(&new, &joined.participant, "please", 2);
    store.apply(change).await.expect("submit");
    assert_eq!(pending.status, PromptStatus::PendingApproval);

    // Both approvers read the pending prompt before either writes.
    let reads = [
        store.prompt(pending.id).await.expect("read prompt"),
        store.prompt(pending.id).await.expect("read prompt"),
    ];
    let store = Arc::new(store);
    let mut tasks = JoinSet::new();
    for (i, read) in (0..).zip(reads) {
        let store = Arc::clone(&store);
        let approved = read
            .approve(&new.created.session, &new.created.host, at(3 + i))
            .expect("approve");
        let change = Change::new(new.created.session.id)
            .write(Write::UpdatePrompt(approved.state))
            .events(approved.events);
        tasks.spawn(async move { store.apply(change).await });
    }
    let mut outcomes = Vec::new();
    while let Some(result) = tasks.join_next().await {
        outcomes.push(result.expect("task"));
    }
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "exactly one approval wins"
    );
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, Err(StoreError::Conflict))),
        "the other is a conflict"
    );
    let stored = store.prompt(pending.id).await.expect("prompt");
    assert_eq!(stored.status, PromptStatus::Queued);
    assert_eq!(stored.version, 1);
    let approvals = store
        .events(new.created.session.id, Seq::ZERO, 100)
        .await
        .expect("events")
        .into_iter()
        .filter(|event| event.payload.event_type() == "prompt.approved")
        .count();
    assert_eq!(approvals, 1);
}

/// A change that fails part-way leaves neither its records nor its events, and
/// does not move `last_seq` or `last_activity_at`.
pub async fn failed_change_leaves_nothing_behind<S: SessionStore>(store: S) {
    let new = session();
    create(&store, &new).await;
    let (first, first_change) = comment(&new, "one", 10);
    store.apply(first_change).await.expect("first comment");
    let before = store
        .session(new.created.session.id)
        .await
        .expect("session");

    // A new comment, then the first comment again (same id): the second insert fails.
    let (second, second_change) = comment(&new, "two", 20);
    let failing = Change::new(new.created.session.id)
        .write(Write::InsertComment(second.clone()))
        .write(Write::InsertComment(first.clone()))
        .events(second_change.events)
        .activity(at(20));
    assert!(matches!(
        store.apply(failing).await,
        Err(StoreError::Duplicate)
    ));

    assert_eq!(
        store
            .session(new.created.session.id)
            .await
            .expect("session"),
        before
    );
    let comments = store
        .comments(new.created.session.id, Page::first(10))
        .await
        .expect("comments");
    assert_eq!(comments, vec![first]);
    assert_eq!(
        seqs(
            &store
                .events(new.created.session.id, Seq::ZERO, 100)
                .await
                .expect("events")
        ),
        vec![1, 2, 3]
    );

    // A stale update late in a change also undoes the change's earlier writes.
    let (third, third_change) = comment(&new, "three", 30);
    let stale = Change::new(new.created.session.id)
        .write(Write::InsertComment(third))
        .write(Write::UpdateInvite(tandem_domain::Invite {
            version: 7,
            ..new.created.invite.clone()
        }))
        .events(third_change.events);
    assert!(matches!(
        store.apply(stale).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store
            .comments(new.created.session.id, Page::first(10))
            .await
            .expect("comments")
            .len(),
        1
    );
    assert_eq!(
        store
            .session(new.created.session.id)
            .await
            .expect("session")
            .last_seq,
        Seq::new(3)
    );

    // And the store writes on as before.
    let (_, fourth) = comment(&new, "four", 40);
    let written = store.apply(fourth).await.expect("a later comment");
    assert_eq!(seqs(&written), vec![4]);
}

/// A session and one of its participants come back together, both as stored; a
/// participant of another session, or an unknown one, is not found.
pub async fn session_with_participant_reads_both<S: SessionStore>(store: S) {
    let new = session();
    let other = session();
    create(&store, &new).await;
    create(&store, &other).await;
    let id = new.created.session.id;
    let host = &new.created.host;
    let (session, participant) = store
        .session_with_participant(id, host.id)
        .await
        .expect("read");
    assert_eq!(session, store.session(id).await.expect("session"));
    assert_eq!(&participant, host);
    assert!(matches!(
        store
            .session_with_participant(id, other.created.host.id)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .session_with_participant(SessionId::from_uuid(Uuid::now_v7()), host.id)
            .await,
        Err(StoreError::NotFound)
    ));
}

/// Updates carry the version they read; a stale version is a `Conflict`.
pub async fn stale_update_is_a_conflict<S: SessionStore>(store: S) {
    let new = session();
    create(&store, &new).await;
    let session = store
        .session(new.created.session.id)
        .await
        .expect("session");
    let patch = SessionPatch {
        mode: Some(SessionMode::PromptDirect),
        ..SessionPatch::default()
    };
    let updated = session
        .update(&new.created.host, patch.clone(), at(5))
        .expect("update");
    store
        .apply(
            Change::new(session.id)
                .write(Write::UpdateSession(updated.state))
                .events(updated.events),
        )
        .await
        .expect("first update");
    let stored = store.session(session.id).await.expect("session");
    assert_eq!(stored.mode, SessionMode::PromptDirect);
    assert_eq!(stored.version, 1);

    // The same read, written again: its version 0 is stale now.
    let again = session
        .update(&new.created.host, patch, at(6))
        .expect("update");
    let result = store
        .apply(
            Change::new(session.id)
                .write(Write::UpdateSession(again.state))
                .events(again.events),
        )
        .await;
    assert!(matches!(result, Err(StoreError::Conflict)));
    // Updating a record that does not exist is a conflict too.
    let (ghost, _) = submit(&new, &new.created.host, "never stored", 7);
    let result = store
        .apply(Change::new(session.id).write(Write::UpdatePrompt(ghost)))
        .await;
    assert!(matches!(result, Err(StoreError::Conflict)));
}

/// Once a session has ended, no change is accepted: `session.closed` is its last event.
pub async fn ended_session_refuses_further_changes<S: SessionStore>(store: S) {
    let new = session();
    create(&store, &new).await;
    let session = store
        .session(new.created.session.id)
        .await
        .expect("session");
    let summary = Summary::parse("done", &TextLimits::DEFAULT).expect("summary");
    let closed = session
        .close(&new.created.host, Some(summary), at(60))
        .expect("close");
    store
        .apply(
            Change::new(session.id)
                .write(Write::UpdateSession(closed.state.clone()))
                .events(closed.events),
        )
        .await
        .expect("close");
    let stored = store.session(session.id).await.expect("session");
    assert_eq!(stored.status(), SessionStatus::Closed);
    assert_eq!(stored.end, closed.state.end);
    assert_eq!(
        stored.end.as_ref().map(|end| end.reason),
        Some(CloseReason::ClosedByHost)
    );

    let (_, late) = comment(&new, "too late", 61);
    assert!(matches!(
        store.apply(late).await,
        Err(StoreError::SessionInactive)
    ));
    let events = store
        .events(session.id, Seq::ZERO, 100)
        .await
        .expect("events");
    assert_eq!(
        events.last().map(|event| event.payload.event_type()),
        Some("session.closed")
    );
    assert_eq!(events.len(), 3);
}

/// Two participants (or invites, or keys) cannot share a token.
pub async fn duplicate_token_is_a_duplicate<S: SessionStore>(store: S) {
    let new = session();
    create(&store, &new).await;
    let (joined, _) = join(&new.created, "Copycat", at(1));
    let change = Change::new(new.created.session.id).write(Write::InsertParticipant {
        participant: joined.participant.clone(),
        token_hash: new.host_token,
    });
    assert!(matches!(
        store.apply(change).await,
        Err(StoreError::Duplicate)
    ));
    assert!(matches!(
        store.participant(joined.participant.id).await,
        Err(StoreError::NotFound)
    ));
    // The same session inserted twice is a duplicate too.
    assert!(matches!(
        store.apply(new.change()).await,
        Err(StoreError::Duplicate)
    ));
}

/// A change may only write records of its own session.
pub async fn change_cannot_write_into_another_session<S: SessionStore>(store: S) {
    let a = session();
    let b = session();
    create(&store, &a).await;
    create(&store, &b).await;
    let (foreign, _) = comment(&b, "sneaky", 1);
    let change = Change::new(a.created.session.id).write(Write::InsertComment(foreign));
    assert!(store.apply(change).await.is_err());
    assert!(
        store
            .comments(b.created.session.id, Page::first(10))
            .await
            .expect("comments")
            .is_empty()
    );
    assert_eq!(
        store
            .session(a.created.session.id)
            .await
            .expect("a")
            .last_seq,
        Seq::new(2)
    );
}

/// Participants: join, role change, removal; token lookups still find a removed
/// participant (the caller refuses it).
pub async fn participants_update_and_token_lookup<S: SessionStore>(store: S) {
    let new = session();
    create(&store, &new).await;
    let (joined, change) = join(&new.created, "Ada", at(1));
    store.apply(change).await.expect("join");
    let session = store
        .session(new.created.session.id)
        .await
        .expect("session");
    let ada = store.participant(joined.participant.id).await.expect("ada");
    assert_eq!(ada, joined.participant);

    let viewer = ada
        .change_role(&session, &new.created.host, InviteRole::Viewer, at(2))
        .expect("role");
    store
        .apply(
            Change::new(session.id)
                .write(Write::UpdateParticipant(viewer.state.clone()))
                .events(viewer.events),
        )
        .await
        .expect("change role");
    let ada = store.participant(ada.id).await.expect("ada");
    assert_eq!(ada.role, tandem_domain::Role::Viewer);
    assert_eq!(ada.version, 1);

    let removed = ada
        .remove(&session, &new.created.host, at(3))
        .expect("remove");
    store
        .apply(
            Change::new(session.id)
                .write(Write::UpdateParticipant(removed.state.clone()))
                .events(removed.events),
        )
        .await
        .expect("remove");
    let ada = store.participant(ada.id).await.expect("ada");
    assert!(!ada.is_present());
    assert_eq!(ada.removed_by, Some(new.created.host.id));
    assert_eq!(ada.left_at, Some(at(3)));
    let participants = store.participants(session.id).await.expect("participants");
    assert_eq!(
        participants.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![new.created.host.id, ada.id]
    );
    assert_eq!(
        store
            .invite(new.created.invite.id)
            .await
            .expect("invite")
            .uses,
        1
    );
}

/// Invites: a second invite with limits, revocation, lookups by token.
pub async fn invites_update_and_token_lookup<S: SessionStore>(store: S) {
    let new = session();
    create(&store, &new).await;
    let settings = tandem_domain::InviteSettings {
        role: InviteRole::Viewer,
        max_uses: std::num::NonZeroU32::new(3),
        expires_in: Some(Ttl::parse("1h").expect("ttl")),
    };
    let invite = tandem_domain::Invite::create(
        tandem_domain::InviteId::from_uuid(Uuid::now_v7()),
        &new.created.session,
        &new.created.host,
        settings,
        at(1),
    )
    .expect("invite");
    let viewer_token = token();
    store
        .apply(Change::new(invite.session_id).write(Write::InsertInvite {
            invite: invite.clone(),
            token_hash: viewer_token,
        }))
        .await
        .expect("insert invite");
    assert_eq!(
        store
            .invite_by_token(&viewer_token)
            .await
            .expect("by token"),
        invite
    );
    let revoked = invite
        .revoke(&new.created.session, &new.created.host, at(2))
        .expect("revoke");
    store
        .apply(Change::new(invite.session_id).write(Write::UpdateInvite(revoked)))
        .await
        .expect("revoke");
    let stored = store.invite(invite.id).await.expect("invite");
    assert_eq!(stored.revoked_at, Some(at(2)));
    assert_eq!(stored.expires_at, Some(at(1 + 3600)));
    assert_eq!(stored.max_uses, Some(3));
    let all = store.invites(invite.session_id).await.expect("invites");
    assert_eq!(
        all.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![new.created.invite.id, invite.id]
    );
}

/// Sessions list newest first, per workspace, by status, with a keyset cursor.
pub async fn sessions_list_newest_first_by_workspace_and_status<S: SessionStore>(store: S) {
    let mut ids = Vec::new();
    for _ in 0..5 {
        let new = session_with("team-a", SessionSettings::default(), t0());
        create(&store, &new).await;
        ids.push(new.created.session.id);
    }
    let other = session_with("team-b", SessionSettings::default(), t0());
    create(&store, &other).await;
    // Close the oldest session of team-a.
    let oldest = store.session(ids[0]).await.expect("session");
    let host = store
        .participants(oldest.id)
        .await
        .expect("participants")
        .remove(0);
    let closed = oldest.close(&host, None, at(1)).expect("close");
    store
        .apply(
            Change::new(oldest.id)
                .write(Write::UpdateSession(closed.state))
                .events(closed.events),
        )
        .await
        .expect("close");

    let filter = SessionFilter {
        workspace_id: WorkspaceId::parse("team-a").expect("ws"),
        status: None,
    };
    let first = store
        .sessions(&filter, Page::first(2))
        .await
        .expect("page 1");
    assert_eq!(
        first.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![ids[4], ids[3]]
    );
    let second = store
        .sessions(
            &filter,
            Page {
                after: Some(ids[3]),
                limit: 10,
            },
        )
        .await
        .expect("page 2");
    assert_eq!(
        second.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![ids[2], ids[1], ids[0]]
    );

    let active = SessionFilter {
        status: Some(SessionStatus::Active),
        ..filter.clone()
    };
    assert_eq!(
        store
            .sessions(&active, Page::first(10))
            .await
            .expect("active")
            .len(),
        4
    );
    let closed = SessionFilter {
        status: Some(SessionStatus::Closed),
        ..filter
    };
    let closed = store
        .sessions(&closed, Page::first(10))
        .await
        .expect("closed");
    assert_eq!(
        closed.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![ids[0]]
    );

    let b = SessionFilter {
        workspace_id: WorkspaceId::parse("team-b").expect("ws"),
        status: None,
    };
    let b = store.sessions(&b, Page::first(10)).await.expect("team-b");
    assert_eq!(
        b.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![other.created.session.id]
    );
}

/// `sessions_due` finds active sessions past `expires_at` or idle too long, and
/// nothing else.
pub async fn sessions_due_finds_expired_and_idle_sessions<S: SessionStore>(store: S) {
    let short = |expires: &str, idle: &str| SessionSettings {
        expires_in: Ttl::parse(expires).expect("ttl"),
        idle_timeout: Ttl::parse(idle).expect("ttl"),
        ..SessionSettings::default()
    };
    let absolute = session_with("default", short("1h", "2h"), t0());
    let idle = session_with("default", short("1d", "10m"), t0());
    let fresh = session_with("default", short("1d", "2h"), t0());
    for new in [&absolute, &idle, &fresh] {
        create(&store, new).await;
    }
    assert!(
        store
            .sessions_due(at(60), 10)
            .await
            .expect("due")
            .is_empty()
    );
    let due_ids = |sessions: Vec<tandem_domain::Session>| {
        sessions.into_iter().map(|s| s.id).collect::<Vec<_>>()
    };
    // At 10 minutes the idle session is due; activity would have saved it.
    assert_eq!(
        due_ids(store.sessions_due(at(600), 10).await.expect("due")),
        vec![idle.created.session.id]
    );
    // At one hour both are due, the idle one (earlier deadline) first.
    assert_eq!(
        due_ids(store.sessions_due(at(3600), 10).await.expect("due")),
        vec![idle.created.session.id, absolute.created.session.id]
    );
    assert_eq!(store.sessions_due(at(3600), 1).await.expect("due").len(), 1);
    // Activity on the fresh session keeps it alive past its first idle deadline.
    store
        .apply(comment(&fresh, "still here", 7000).1)
        .await
        .expect("activity");
    let due = due_ids(store.sessions_due(at(7300), 10).await.expect("due"));
    assert!(!due.contains(&fresh.created.session.id));
    // An ended session is never due.
    let session = store
        .session(idle.created.session.id)
        .await
        .expect("session");
    let expired = session.expire(at(600)).expect("expire");
    store
        .apply(
            Change::new(session.id)
                .write(Write::UpdateSession(expired.state))
                .events(expired.events),
        )
        .await
        .expect("expire");
    assert!(
        !due_ids(store.sessions_due(at(7300), 10).await.expect("due"))
            .contains(&idle.created.session.id)
    );
}

/// `last_activity_at` records the latest activity and never moves back.
pub async fn activity_only_moves_forward<S: SessionStore>(store: S) {
    let new = session();
    create(&store, &new).await;
    let id = new.created.session.id;
    store
        .apply(comment(&new, "later", 100).1)
        .await
        .expect("comment");
    assert_eq!(
        store.session(id).await.expect("session").last_activity_at,
        at(100)
    );
    store
        .apply(comment(&new, "earlier clock", 50).1)
        .await
        .expect("comment");
    assert_eq!(
        store.session(id).await.expect("session").last_activity_at,
        at(100)
    );
    // A change without activity leaves it alone.
    let (_, change) = comment(&new, "quiet", 200);
    store
        .apply(Change {
            activity_at: None,
            ..change
        })
        .await
        .expect("comment");
    assert_eq!(
        store.session(id).await.expect("session").last_activity_at,
        at(100)
    );
}

/// Comments come back in posting order, paged by cursor.
pub async fn comments_page_in_posting_order<S: SessionStore>(store: S) {
    let new = session();
    create(&store, &new).await;
    let mut posted = Vec::new();
    for i in 0..5 {
        let (comment, change) = comment(&new, &format!("comment {i}\nwith a second line"), i);
        store.apply(change).await.expect("comment");
        posted.push(comment);
    }
    let id = new.created.session.id;
    assert_eq!(
        store.comments(id, Page::first(3)).await.expect("page"),
        posted[..3].to_vec()
    );
    assert_eq!(
        store
            .comments(
                id,
                Page {
                    after: Some(posted[2].id),
                    limit: 3
                }
            )
            .await
            .expect("page"),
        posted[3..].to_vec()
    );
}

/// Prompts: filters, paging, every lifecycle field round-trips, queue order.
pub async fn prompts_filter_page_and_queue_order<S: SessionStore>(store: S) {
    let settings = SessionSettings {
        mode: SessionMode::PromptWithApproval,
        ..SessionSettings::default()
    };
    let new = session_with("default", settings, t0());
    create(&store, &new).await;
    let (joined, change) = join(&new.created, "Ada", at(1));
    store.apply(change).await.expect("join");
    let ada = joined.participant;
    let host = &new.created.host;
    let session = &new.created.session;

    let (pending, change) = submit(&new, &ada, "pending one", 10);
    store.apply(change).await.expect("submit");
    let (direct, change) = submit(&new, host, "host prompt", 20);
    store.apply(change).await.expect("submit");
    // Approving the pending prompt queues it after the host's prompt.
    let approved = pending.approve(session, host, at(30)).expect("approve");
    store
        .apply(
            Change::new(session.id)
                .write(Write::UpdatePrompt(approved.state.clone()))
                .events(approved.events),
        )
        .await
        .expect("approve");

    let next = store
        .next_queued_prompt(session.id)
        .await
        .expect("next")
        .expect("a queued prompt");
    assert_eq!(next.id, direct.id);
    // Run the host prompt to completion with every lifecycle field set.
    let started = next.start(at(40)).expect("start");
    store
        .apply(
            Change::new(session.id)
                .write(Write::UpdatePrompt(started.state.clone()))
                .events(started.events),
        )
        .await
        .expect("start");
    let running = store.prompt(direct.id).await.expect("prompt");
    assert_eq!(
        running,
        tandem_domain::Prompt {
            version: 1,
            ..started.state.clone()
        }
    );
    let done = running
        .complete(StopReason::EndTurn, at(50))
        .expect("complete");
    store
        .apply(
            Change::new(session.id)
                .write(Write::UpdatePrompt(done.state.clone()))
                .events(done.events),
        )
        .await
        .expect("complete");
    let stored = store.prompt(direct.id).await.expect("prompt");
    assert_eq!(
        stored,
        tandem_domain::Prompt {
            version: 2,
            ..done.state.clone()
        }
    );

    let next = store
        .next_queued_prompt(session.id)
        .await
        .expect("next")
        .expect("a queued prompt");
    assert_eq!(next.id, pending.id);
    assert_eq!(next.resolved_by, Some(host.id));
    assert_eq!(next.queued_at, Some(at(30)));

    // A failed retry keeps its error and its origin.
    let retry = stored
        .retry(prompt_id(), session, host, at(60))
        .expect("retry");
    store
        .apply(
            Change::new(session.id)
                .write(Write::InsertPrompt(retry.state.clone()))
                .events(retry.events),
        )
        .await
        .expect("retry");
    assert_eq!(
        store.prompt(retry.state.id).await.expect("retry").retry_of,
        Some(direct.id)
    );

    let filter = PromptFilter {
        session_id: session.id,
        status: None,
    };
    let all = store.prompts(&filter, Page::first(10)).await.expect("all");
    assert_eq!(
        all.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![pending.id, direct.id, retry.state.id]
    );
    let page = store
        .prompts(
            &filter,
            Page {
                after: Some(pending.id),
                limit: 1,
            },
        )
        .await
        .expect("page");
    assert_eq!(
        page.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![direct.id]
    );
    let completed = PromptFilter {
        status: Some(PromptStatus::Completed),
        ..filter
    };
    let completed = store
        .prompts(&completed, Page::first(10))
        .await
        .expect("completed");
    assert_eq!(
        completed.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![direct.id]
    );

    // A failed prompt keeps its error.
    let next = store
        .next_queued_prompt(session.id)
        .await
        .expect("next")
        .expect("queued");
    let started = next.start(at(70)).expect("start");
    store
        .apply(Change::new(session.id).write(Write::UpdatePrompt(started.state.clone())))
        .await
        .expect("start");
    let running = store.prompt(next.id).await.expect("prompt");
    let failed = running.fail("the agent crashed", at(80)).expect("fail");
    store
        .apply(Change::new(session.id).write(Write::UpdatePrompt(failed.state.clone())))
        .await
        .expect("fail");
    assert_eq!(
        store
            .prompt(next.id)
            .await
            .expect("prompt")
            .error
            .as_deref(),
        Some("the agent crashed")
    );
}

/// `prompts_in_status` finds prompts across sessions (start-up recovery).
pub async fn prompts_in_status_across_sessions<S: SessionStore>(store: S) {
    let mut running = Vec::new();
    for _ in 0..2 {
        let new = session();
        create(&store, &new).await;
        let (prompt, change) = submit(&new, &new.created.host, "work", 1);
        store.apply(change).await.expect("submit");
        let started = prompt.start(at(2)).expect("start");
        store
            .apply(
                Change::new(new.created.session.id)
                    .write(Write::UpdatePrompt(started.state.clone())),
            )
            .await
            .expect("start");
        running.push(started.state.id);
        let (_, queued) = submit(&new, &new.created.host, "later", 3);
        store.apply(queued).await.expect("submit");
    }
    let found = store
        .prompts_in_status(PromptStatus::Running, 10)
        .await
        .expect("running");
    assert_eq!(found.iter().map(|p| p.id).collect::<Vec<_>>(), running);
    assert_eq!(
        store
            .prompts_in_status(PromptStatus::Queued, 10)
            .await
            .expect("queued")
            .len(),
        2
    );
    assert_eq!(
        store
            .prompts_in_status(PromptStatus::Queued, 1)
            .await
            .expect("queued")
            .len(),
        1
    );
}

/// Permission requests round-trip, open and resolved, with the agent's raw JSON.
pub async fn permission_requests_round_trip<S: SessionStore>(store: S) {
    let new = session();
    create(&store, &new).await;
    let session = &new.created.session;
    let (prompt, change) = submit(&new, &new.created.host, "run the tests", 1);
    store.apply(change).await.expect("submit");
    let started = prompt.start(at(2)).expect("start");
    store
        .apply(Change::new(session.id).write(Write::UpdatePrompt(started.state.clone())))
        .await
        .expect("start");
    let options = vec![
        PermissionOption {
            id: "allow".into(),
            name: "Allow".into(),
            kind: PermissionOptionKind::AllowOnce,
        },
        PermissionOption {
            id: "deny".into(),
            name: "Deny".into(),
            kind: PermissionOptionKind::RejectOnce,
        },
    ];
    let ask = PermissionAsk {
        id: PermissionRequestId::from_uuid(Uuid::now_v7()),
        tool_call: serde_json::json!({"toolCallId": "call-1", "title": "cargo test", "kind": "execute", "extra": [1, 2]}),
        options,
        timeout: TimeDelta::seconds(60),
        redactions: Redactions::none(),
    };
    let opened = PermissionRequest::open(session, &started.state, ask, at(3)).expect("open");
    store
        .apply(
            Change::new(session.id)
                .write(Write::InsertPermissionRequest(opened.state.clone()))
                .events(opened.events),
        )
        .await
        .expect("open");
    assert_eq!(
        store
            .permission_request(opened.state.id)
            .await
            .expect("request"),
        opened.state
    );
    assert_eq!(
        store
            .open_permission_requests(prompt.id)
            .await
            .expect("open"),
        vec![opened.state.clone()]
    );

    let answered = opened
        .state
        .answer(
            session,
            &new.created.host,
            tandem_domain::PermissionAnswer::Select("allow".into()),
            at(4),
        )
        .expect("answer");
    store
        .apply(
            Change::new(session.id)
                .write(Write::UpdatePermissionRequest(answered.state.clone()))
                .events(answered.events),
        )
        .await
        .expect("answer");
    let stored = store
        .permission_request(opened.state.id)
        .await
        .expect("request");
    assert_eq!(
        stored,
        PermissionRequest {
            version: 1,
            ..answered.state
        }
    );
    let resolution = stored.resolution.expect("resolved");
    assert_eq!(
        resolution.outcome,
        PermissionOutcome::Selected {
            option_id: "allow".into()
        }
    );
    assert_eq!(resolution.cause, PermissionCause::Host);
    assert!(
        store
            .open_permission_requests(prompt.id)
            .await
            .expect("open")
            .is_empty()
    );
}

fn api_key(workspace: &str, scopes: &[Scope]) -> ApiKey {
    ApiKey::new(
        ApiKeyId::from_uuid(Uuid::now_v7()),
        WorkspaceId::parse(workspace).expect("workspace"),
        ApiKeyName::parse("ci key").expect("name"),
        scopes.iter().copied().collect::<BTreeSet<_>>(),
        t0(),
    )
    .expect("key")
}

/// API keys: insert, look up by secret hash, list per workspace, revoke once.
pub async fn api_keys_round_trip_and_revoke<S: SessionStore>(store: S) {
    let a1 = api_key("team-a", &[Scope::SessionsRead, Scope::SessionsWrite]);
    let a2 = api_key("team-a", &[Scope::Admin]);
    let b1 = api_key("team-b", &[Scope::SessionsRead]);
    let (t1, t2, t3) = (token(), token(), token());
    store.insert_api_key(&a1, &t1).await.expect("insert");
    store.insert_api_key(&a2, &t2).await.expect("insert");
    store.insert_api_key(&b1, &t3).await.expect("insert");
    assert!(matches!(
        store
            .insert_api_key(&api_key("team-a", &[Scope::Admin]), &t1)
            .await,
        Err(StoreError::Duplicate)
    ));

    assert_eq!(store.api_key_by_token(&t1).await.expect("by token"), a1);
    assert_eq!(store.api_key(a2.id).await.expect("by id"), a2);
    let team_a = WorkspaceId::parse("team-a").expect("ws");
    let listed = store
        .api_keys(Some(&team_a), Page::first(10))
        .await
        .expect("list");
    assert_eq!(
        listed.iter().map(|k| k.id).collect::<Vec<_>>(),
        vec![a2.id, a1.id]
    );
    let paged = store
        .api_keys(
            Some(&team_a),
            Page {
                after: Some(a2.id),
                limit: 10,
            },
        )
        .await
        .expect("list");
    assert_eq!(paged.iter().map(|k| k.id).collect::<Vec<_>>(), vec![a1.id]);
    assert_eq!(
        store
            .api_keys(None, Page::first(10))
            .await
            .expect("all")
            .len(),
        3
    );

    store.revoke_api_key(a1.id, at(5)).await.expect("revoke");
    assert_eq!(
        store.api_key(a1.id).await.expect("key").revoked_at,
        Some(at(5))
    );
    assert!(
        !store
            .api_key_by_token(&t1)
            .await
            .expect("key")
            .allows(Scope::SessionsRead)
    );
    assert!(matches!(
        store.revoke_api_key(a1.id, at(6)).await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        store
            .revoke_api_key(ApiKeyId::from_uuid(Uuid::now_v7()), at(6))
            .await,
        Err(StoreError::NotFound)
    ));
}

/// The bootstrap admin key is inserted once, even by concurrent starters.
pub async fn first_admin_key_is_inserted_once<S: SessionStore + Clone>(store: S) {
    // A non-admin key does not count as an admin.
    store
        .insert_api_key(&api_key("default", &[Scope::SessionsWrite]), &token())
        .await
        .expect("insert");
    let mut tasks = JoinSet::new();
    for _ in 0..4 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .insert_first_admin_key(&api_key("default", &[Scope::Admin]), &token())
                .await
        });
    }
    let mut inserted = 0;
    while let Some(result) = tasks.join_next().await {
        if result.expect("task").expect("bootstrap") {
            inserted += 1;
        }
    }
    assert_eq!(inserted, 1);
    assert!(
        !store
            .insert_first_admin_key(&api_key("default", &[Scope::Admin]), &token())
            .await
            .expect("again")
    );
    // Once the only admin key is revoked, a new one may be bootstrapped.
    let keys = store.api_keys(None, Page::first(10)).await.expect("keys");
    let admin = keys
        .iter()
        .find(|k| k.scopes.contains(&Scope::Admin))
        .expect("an admin key");
    store.revoke_api_key(admin.id, at(1)).await.expect("revoke");
    assert!(
        store
            .insert_first_admin_key(&api_key("default", &[Scope::Admin]), &token())
            .await
            .expect("after revoke")
    );
}

/// Redaction counts, by kind.
fn redactions(counts: &[(&str, u32)]) -> Redactions {
    let mut redactions = Redactions::none();
    for (kind, count) in counts {
        redactions.add(kind, *count);
    }
    redactions
}

/// Every event type of the catalog is stored and read back unchanged.
pub async fn every_event_type_round_trips<S: SessionStore>(store: S) {
    let new = session();
    create(&store, &new).await;
    let session = &new.created.session;
    let host = new.created.host.id;
    let prompt = prompt_id();
    let request = PermissionRequestId::from_uuid(Uuid::now_v7());
    let mut payloads = vec![
        EventPayload::SessionUpdated {
            title: Title::parse("Renamed", &TextLimits::DEFAULT).expect("title"),
            mode: SessionMode::CommentOnly,
            permission_policy: PermissionPolicy::AllowAll,
            expires_at: at(99),
        },
        EventPayload::ParticipantLeft {
            participant_id: host,
        },
        EventPayload::ParticipantUpdated {
            participant_id: host,
            role: tandem_domain::Role::Viewer,
        },
        EventPayload::ParticipantRemoved {
            participant_id: host,
            removed_by: host,
        },
        EventPayload::PromptEdited {
            prompt_id: prompt,
            text: prompt_text("edited"),
        },
        EventPayload::PromptApproved {
            prompt_id: prompt,
            approved_by: host,
        },
        EventPayload::PromptRejected {
            prompt_id: prompt,
            rejected_by: host,
        },
        EventPayload::PromptWithdrawn { prompt_id: prompt },
        EventPayload::PromptCancelRequested {
            prompt_id: prompt,
            requested_by: host,
        },
        EventPayload::PromptStarted { prompt_id: prompt },
        EventPayload::AgentOutput(AgentOutput {
            prompt_id: prompt,
            kind: AgentOutputKind::Message,
            text: Some("héllo \u{1F600}\n\"quoted\"".into()),
            raw: serde_json::json!({"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": "héllo"}}),
            redactions: redactions(&[("github_token", 2), ("env_value", 1)]),
        }),
        EventPayload::AgentOutput(AgentOutput {
            prompt_id: prompt,
            kind: AgentOutputKind::Other,
            text: None,
            raw: serde_json::json!({"sessionUpdate": "something_new", "n": 1.5, "nested": {"a": [null, true]}}),
            redactions: Redactions::none(),
        }),
        EventPayload::AgentPermissionRequested {
            request_id: request,
            prompt_id: prompt,
            tool_call: serde_json::json!({"toolCallId": "t1"}),
            options: vec![PermissionOption {
                id: "a".into(),
                name: "Allow".into(),
                kind: PermissionOptionKind::AllowAlways,
            }],
            deadline: at(100),
            redactions: redactions(&[("private_key", 1)]),
        },
        EventPayload::AgentPermissionResolved {
            request_id: request,
            prompt_id: prompt,
            outcome: PermissionOutcome::Cancelled,
            cause: PermissionCause::Timeout,
            resolved_by: None,
        },
        EventPayload::PromptCompleted {
            prompt_id: prompt,
            stop_reason: StopReason::MaxTokens,
        },
        EventPayload::PromptFailed {
            prompt_id: prompt,
            error: "boom".into(),
            redactions: Redactions::none(),
        },
        EventPayload::PromptCancelled {
            prompt_id: prompt,
            cancelled_by: Some(host),
        },
    ];
    payloads.extend(super::agent_state::every_agent_payload(host));
    payloads.push(EventPayload::SessionClosed {
        status: SessionStatus::Terminated,
        reason: CloseReason::Terminated,
        summary: None,
    });
    let actors = [
        Actor::Participant(host),
        Actor::ApiKey(ApiKeyId::from_uuid(Uuid::now_v7())),
        Actor::Agent,
        Actor::System,
    ];
    let events: Vec<NewEvent> = payloads
        .into_iter()
        .enumerate()
        .map(|(i, payload)| {
            NewEvent::new(
                at(i64::try_from(i).expect("small")),
                actors[i % actors.len()],
                payload,
            )
        })
        .collect();
    let written = store
        .apply(Change::new(session.id).events(events.clone()))
        .await
        .expect("write");
    let read = store
        .events(session.id, Seq::new(2), 100)
        .await
        .expect("read");
    assert_eq!(read, written);
    // Every type of the catalog is written and read back (the log above holds
    // one event of each).
    let whole_log = store
        .events(session.id, Seq::ZERO, 100)
        .await
        .expect("read");
    let types: BTreeSet<&str> = whole_log.iter().map(|e| e.payload.event_type()).collect();
    let listed: BTreeSet<&str> = EventType::ALL.iter().map(|kind| kind.as_str()).collect();
    assert_eq!(
        listed.difference(&types).copied().collect::<Vec<_>>(),
        ["comment.posted", "prompt.submitted"],
        "every event type is stored and read back (these two need records, tested elsewhere)"
    );
    let read_back: Vec<NewEvent> = read
        .into_iter()
        .map(|e| NewEvent::new(e.at, e.actor, e.payload))
        .collect();
    assert_eq!(read_back, events);
}

/// The change that cancels a session's open prompts and closes it, as `by` at
/// `secs`: what a planned close writes.
fn close_open_work(
    work: &crate::OpenWork,
    by: &tandem_domain::Participant,
    secs: i64,
) -> Result<Option<Change>, tandem_domain::DomainError> {
    let mut change = Change::new(work.session.id);
    for prompt in &work.prompts {
        let abandoned = prompt.abandon(at(secs))?;
        change = change
            .write(Write::UpdatePrompt(abandoned.state))
            .events(abandoned.events);
    }
    let closed = work.session.close(by, None, at(secs))?;
    Ok(Some(
        change
            .write(Write::UpdateSession(closed.state))
            .events(closed.events),
    ))
}

/// `apply_planned` shows the plan the session's open work as of the lock, and
/// commits what it plans; a refusal or no plan writes nothing.
pub async fn planned_change_sees_open_work_under_the_lock<S: SessionStore>(store: S) {
    let new = session();
    create(&store, &new).await;
    let id = new.created.session.id;
    let (queued, change) = submit(&new, &new.created.host, "queued", 1);
    store.apply(change).await.expect("submit");
    let (other, change) = submit(&new, &new.created.host, "will run", 2);
    store.apply(change).await.expect("submit");
    let running = other.start(at(3)).expect("start");
    store
        .apply(Change::new(id).write(Write::UpdatePrompt(running.state.clone())))
        .await
        .expect("start");
    let (joined, change) = join(&new.created, "Ada", at(4));
    store.apply(change).await.expect("join");
    let (pending, change) = submit(&new, &joined.participant, "pending", 5);
    store.apply(change).await.expect("submit");

    // A refusal writes nothing.
    let refused = store
        .apply_planned(
            id,
            Box::new(|_| Err(tandem_domain::DomainError::SessionNotExpired)),
        )
        .await;
    assert!(matches!(
        refused,
        Err(StoreError::Refused(
            tandem_domain::DomainError::SessionNotExpired
        ))
    ));
    // No plan writes nothing.
    assert!(
        store
            .apply_planned(id, Box::new(|_| Ok(None)))
            .await
            .expect("nothing")
            .is_empty()
    );
    assert!(matches!(
        store
            .apply_planned(SessionId::from_uuid(Uuid::now_v7()), Box::new(|_| Ok(None)))
            .await,
        Err(StoreError::NotFound)
    ));

    let host = new.created.host.clone();
    let events = store
        .apply_planned(
            id,
            Box::new(move |work| {
                let ids: Vec<_> = work.prompts.iter().map(|p| p.id).collect();
                assert_eq!(
                    ids,
                    vec![queued.id, other.id],
                    "queued and running prompts, oldest first"
                );
                assert!(work.permission_requests.is_empty());
                assert_eq!(work.session.last_seq, Seq::new(6));
                close_open_work(&work, &host, 9)
            }),
        )
        .await
        .expect("planned close");
    let types: Vec<_> = events.iter().map(|e| e.payload.event_type()).collect();
    assert_eq!(
        types,
        vec!["prompt.cancelled", "prompt.cancelled", "session.closed"]
    );
    assert_eq!(
        store.session(id).await.expect("session").status(),
        SessionStatus::Closed
    );
    assert_eq!(
        store.prompt(pending.id).await.expect("pending").status,
        PromptStatus::PendingApproval
    );
    // Once ended, the store refuses any further change, planned or not.
    let late = store
        .apply_planned(id, Box::new(|work| Ok(Some(Change::new(work.session.id)))))
        .await;
    assert!(matches!(late, Err(StoreError::SessionInactive)));
}

/// Submissions racing a planned close never leave a prompt queued in the closed
/// session: each either lands before the plan's read (and is cancelled by it) or
/// is refused after it.
pub async fn no_change_slips_between_plan_and_commit<S: SessionStore + Clone>(store: S) {
    let new = session();
    create(&store, &new).await;
    let id = new.created.session.id;
    let mut tasks = JoinSet::new();
    for i in 0..40 {
        let store = store.clone();
        let (_, change) = submit(&new, &new.created.host, &format!("racer {i}"), i);
        tasks.spawn(async move { store.apply(change).await });
    }
    let host = new.created.host.clone();
    store
        .apply_planned(id, Box::new(move |work| close_open_work(&work, &host, 100)))
        .await
        .expect("close");
    while let Some(result) = tasks.join_next().await {
        match result.expect("task") {
            Ok(_) | Err(StoreError::SessionInactive) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    let filter = PromptFilter {
        session_id: id,
        status: Some(PromptStatus::Queued),
    };
    assert!(
        store
            .prompts(&filter, Page::first(100))
            .await
            .expect("prompts")
            .is_empty()
    );
    let events = store.events(id, Seq::ZERO, 1000).await.expect("events");
    assert_eq!(
        events.last().map(|e| e.payload.event_type()),
        Some("session.closed")
    );
}

/// Concurrent joins through one invite all count, and never past `max_uses`.
pub async fn invites_are_redeemed_atomically<S: SessionStore + Clone>(store: S) {
    let new = session();
    create(&store, &new).await;
    let settings = tandem_domain::InviteSettings {
        role: InviteRole::Viewer,
        max_uses: std::num::NonZeroU32::new(3),
        expires_in: None,
    };
    let limited = tandem_domain::Invite::create(
        tandem_domain::InviteId::from_uuid(Uuid::now_v7()),
        &new.created.session,
        &new.created.host,
        settings,
        at(1),
    )
    .expect("invite");
    store
        .apply(Change::new(limited.session_id).write(Write::InsertInvite {
            invite: limited.clone(),
            token_hash: token(),
        }))
        .await
        .expect("insert invite");
    for (invite, joiners, admitted) in [(&new.created.invite, 8, 8), (&limited, 8, 3)] {
        let mut tasks = JoinSet::new();
        for i in 0..joiners {
            let store = store.clone();
            // Every joiner read the invite before anyone redeemed it.
            let created = tandem_domain::Created {
                invite: invite.clone(),
                ..new.created.clone()
            };
            let (_, change) = join(&created, &format!("joiner {i}"), at(2));
            tasks.spawn(async move { store.apply(change).await });
        }
        let mut ok = 0;
        while let Some(result) = tasks.join_next().await {
            match result.expect("task") {
                Ok(_) => ok += 1,
                Err(StoreError::Conflict) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(ok, admitted);
        assert_eq!(
            store.invite(invite.id).await.expect("invite").uses,
            admitted
        );
    }
}

/// A stream ticket works once, before it expires, even when redeemed concurrently.
pub async fn stream_tickets_are_used_once_and_expire<S: SessionStore + Clone>(store: S) {
    let new = session();
    create(&store, &new).await;
    let key = api_key("default", &[Scope::SessionsRead]);
    store.insert_api_key(&key, &token()).await.expect("key");
    let participant_ticket = crate::StreamTicket {
        session_id: new.created.session.id,
        holder: crate::TicketHolder::Participant(new.created.host.id),
        expires_at: at(60),
    };
    let key_ticket = crate::StreamTicket {
        holder: crate::TicketHolder::ApiKey(key.id),
        ..participant_ticket
    };
    let (a, b, c) = (token(), token(), token());
    store
        .insert_stream_ticket(&a, &participant_ticket)
        .await
        .expect("insert");
    store
        .insert_stream_ticket(&b, &key_ticket)
        .await
        .expect("insert");
    store
        .insert_stream_ticket(&c, &participant_ticket)
        .await
        .expect("insert");

    // Concurrent redemptions of one ticket: exactly one wins.
    let mut tasks = JoinSet::new();
    for _ in 0..5 {
        let store = store.clone();
        tasks.spawn(async move { store.redeem_stream_ticket(&a, at(10)).await });
    }
    let mut won = Vec::new();
    while let Some(result) = tasks.join_next().await {
        match result.expect("task") {
            Ok(ticket) => won.push(ticket),
            Err(StoreError::NotFound) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, vec![participant_ticket]);
    assert_eq!(
        store
            .redeem_stream_ticket(&b, at(59))
            .await
            .expect("key ticket"),
        key_ticket
    );
    // Expired at 60 s.
    assert!(matches!(
        store.redeem_stream_ticket(&c, at(60)).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.redeem_stream_ticket(&token(), at(1)).await,
        Err(StoreError::NotFound)
    ));

    // Expired tickets are purged, used or not; a live one stays usable.
    let live = token();
    store
        .insert_stream_ticket(
            &live,
            &crate::StreamTicket {
                expires_at: at(200),
                ..participant_ticket
            },
        )
        .await
        .expect("insert");
    assert_eq!(store.purge_stream_tickets(at(100)).await.expect("purge"), 3);
    assert_eq!(store.purge_stream_tickets(at(100)).await.expect("purge"), 0);
    assert!(store.redeem_stream_ticket(&live, at(150)).await.is_ok());
}

/// One holder at a time: a lease is renewed by its holder, refused to others until
/// it expires or is released.
pub async fn agent_leases_admit_one_holder_until_expiry<S: SessionStore + Clone>(store: S) {
    register(&store, &["a", "b", "c", "r1", "r2", "r3", "r4", "r5"]).await;
    let new = session();
    create(&store, &new).await;
    let id = new.created.session.id;
    let acquire = |holder: &'static str, now: i64, until: i64| {
        let store = store.clone();
        async move {
            store
                .acquire_agent_lease(id, holder, at(now), at(until))
                .await
                .expect("acquire")
        }
    };
    assert!(acquire("a", 0, 30).await, "a free lease is taken");
    assert!(!acquire("b", 10, 40).await, "a held lease is refused");
    assert!(acquire("a", 20, 50).await, "the holder renews");
    assert!(!acquire("b", 49, 80).await, "renewed until 50");
    assert!(acquire("b", 50, 80).await, "an expired lease is taken over");
    assert!(!acquire("a", 51, 90).await, "the old holder lost it");

    // Releasing is the holder's alone.
    store.release_agent_lease(id, "a").await.expect("release");
    assert!(!acquire("c", 52, 90).await, "a non-holder cannot release");
    store.release_agent_lease(id, "b").await.expect("release");
    assert!(acquire("c", 52, 90).await, "a released lease is free");

    // Racers for a free lease: exactly one wins.
    let other = session();
    create(&store, &other).await;
    let other_id = other.created.session.id;
    let mut tasks = JoinSet::new();
    for holder in ["r1", "r2", "r3", "r4", "r5"] {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .acquire_agent_lease(other_id, holder, at(0), at(30))
                .await
                .expect("acquire")
        });
    }
    let mut won = 0;
    while let Some(result) = tasks.join_next().await {
        won += usize::from(result.expect("task"));
    }
    assert_eq!(won, 1);
}

/// A change under a lease is written while its holder holds the lease, and
/// refused (nothing written) once another holder took it over or it was released.
pub async fn changes_under_a_lease_need_its_holder<S: SessionStore>(store: S) {
    register(&store, &["a", "b"]).await;
    let new = session();
    create(&store, &new).await;
    let id = new.created.session.id;
    let under = |holder: &str, secs: i64| comment(&new, "agent work", secs).1.under_lease(holder);

    assert!(
        matches!(store.apply(under("a", 1)).await, Err(StoreError::LeaseLost)),
        "nobody holds the lease yet"
    );
    assert!(
        store
            .acquire_agent_lease(id, "a", at(0), at(30))
            .await
            .expect("acquire")
    );
    let written = store.apply(under("a", 2)).await.expect("the holder writes");
    assert_eq!(seqs(&written), vec![3]);
    assert!(
        store
            .acquire_agent_lease(id, "b", at(31), at(60))
            .await
            .expect("take over")
    );
    assert!(
        matches!(
            store.apply(under("a", 32)).await,
            Err(StoreError::LeaseLost)
        ),
        "the old holder's change is refused"
    );
    assert_eq!(
        store.session(id).await.expect("read").last_seq,
        Seq::new(3),
        "and wrote nothing"
    );
    store
        .apply(under("b", 33))
        .await
        .expect("the new holder writes");
    store.release_agent_lease(id, "b").await.expect("release");
    assert!(matches!(
        store.apply(under("b", 34)).await,
        Err(StoreError::LeaseLost)
    ));
    // Changes without a lease are not affected.
    store
        .apply(comment(&new, "a person's comment", 35).1)
        .await
        .expect("an ordinary change");
}

/// Work no replica is doing: active sessions with queued or running prompts whose
/// lease is free or expired.
pub async fn sessions_awaiting_agent_are_unleased_with_work<S: SessionStore>(store: S) {
    register(&store, &["r1"]).await;
    let idle = session();
    let queued = session();
    let leased = session();
    let closed = session();
    for new in [&idle, &queued, &leased, &closed] {
        create(&store, new).await;
    }
    for new in [&queued, &leased, &closed] {
        let (_, change) = submit(new, &new.created.host, "work", 1);
        store.apply(change).await.expect("submit");
    }
    close_with_open_prompts_kept(&store, &closed).await;
    assert!(
        store
            .acquire_agent_lease(leased.created.session.id, "r1", at(2), at(30))
            .await
            .expect("lease")
    );
    let awaiting = |now| store.sessions_awaiting_agent(at(now), 10);
    assert_eq!(
        awaiting(10).await.expect("awaiting"),
        vec![queued.created.session.id]
    );
    let mut expired = awaiting(30).await.expect("awaiting");
    expired.sort();
    let mut expected = vec![queued.created.session.id, leased.created.session.id];
    expected.sort();
    assert_eq!(
        expired, expected,
        "an expired lease frees its session's work"
    );
    assert_eq!(
        store
            .sessions_awaiting_agent(at(30), 1)
            .await
            .expect("awaiting")
            .len(),
        1
    );
}

/// Declares lease holders alive.
async fn register<S: SessionStore>(store: &S, holders: &[&str]) {
    for holder in holders {
        store
            .register_lease_holder(holder)
            .await
            .unwrap_or_else(|error| panic!("register {holder}: {error}"));
    }
}

/// A lease whose holder is not alive (never declared, or its store closed) is
/// free at once, long before it expires; a live holder's is not. Holder names
/// are checked.
pub async fn leases_of_holders_not_alive_are_free<S: SessionStore>(store: S) {
    register(&store, &["alive", "also-alive"]).await;
    for bad in [
        "",
        "has space",
        "é",
        &"x".repeat(crate::MAX_LEASE_HOLDER_LEN + 1),
    ] {
        assert!(
            store.register_lease_holder(bad).await.is_err(),
            "{bad:?} is not a holder's name"
        );
    }
    let new = session();
    create(&store, &new).await;
    let id = new.created.session.id;
    let (_, queued) = submit(&new, &new.created.host, "work", 1);
    store.apply(queued).await.expect("submit");
    assert!(
        store
            .acquire_agent_lease(id, "ghost", at(0), at(30))
            .await
            .expect("acquire"),
        "a free lease is taken, whoever asks"
    );
    assert_eq!(
        store
            .sessions_awaiting_agent(at(1), 10)
            .await
            .expect("awaiting"),
        vec![id],
        "a lease held by nobody alive leaves its work to be done"
    );
    assert!(
        store
            .acquire_agent_lease(id, "alive", at(1), at(31))
            .await
            .expect("acquire"),
        "a holder that is not alive loses its lease at once"
    );
    assert!(
        store
            .sessions_awaiting_agent(at(2), 10)
            .await
            .expect("awaiting")
            .is_empty(),
        "a live holder's session is being worked on"
    );
    assert!(
        !store
            .acquire_agent_lease(id, "also-alive", at(2), at(32))
            .await
            .expect("acquire"),
        "a live holder keeps its lease until it expires"
    );
    assert!(
        store
            .acquire_agent_lease(id, "also-alive", at(31), at(61))
            .await
            .expect("acquire"),
        "and loses it then"
    );
}

/// Leases held through a store that was closed (its process ended) are free at
/// once for the store opened after it on the same database: a restarted
/// server does not wait for its predecessor's leases to expire.
pub async fn leases_of_a_closed_store_are_free_at_once<S: SessionStore, F, Fut>(store: S, reopen: F)
where
    F: FnOnce(S) -> Fut,
    Fut: std::future::Future<Output = S>,
{
    register(&store, &["first-life"]).await;
    let new = session();
    create(&store, &new).await;
    let id = new.created.session.id;
    let (_, queued) = submit(&new, &new.created.host, "work", 1);
    store.apply(queued).await.expect("submit");
    assert!(
        store
            .acquire_agent_lease(id, "first-life", at(0), at(30))
            .await
            .expect("acquire")
    );
    assert!(
        store
            .sessions_awaiting_agent(at(1), 10)
            .await
            .expect("awaiting")
            .is_empty()
    );
    let store = reopen(store).await;
    register(&store, &["second-life"]).await;
    assert_eq!(
        store
            .sessions_awaiting_agent(at(2), 10)
            .await
            .expect("awaiting"),
        vec![id],
        "the closed store's session awaits an agent"
    );
    assert!(
        store
            .acquire_agent_lease(id, "second-life", at(2), at(32))
            .await
            .expect("acquire"),
        "and its lease is taken over long before it expires"
    );
}

/// Closes a session with a bare session update, leaving its prompts as they are.
async fn close_with_open_prompts_kept<S: SessionStore>(store: &S, new: &NewSession) {
    let current = store
        .session(new.created.session.id)
        .await
        .expect("session");
    let closed = current
        .close(&new.created.host, None, at(3))
        .expect("close");
    store
        .apply(
            Change::new(current.id)
                .write(Write::UpdateSession(closed.state))
                .events(closed.events),
        )
        .await
        .expect("close");
}

/// The store answers a health check.
pub async fn ping_answers<S: SessionStore>(store: S) {
    store.ping().await.expect("ping");
}

/// Data written through one store is there when the database is opened again.
pub async fn survives_reopening<S: SessionStore, F, Fut>(store: S, reopen: F)
where
    F: FnOnce(S) -> Fut,
    Fut: std::future::Future<Output = S>,
{
    let new = session();
    create(&store, &new).await;
    store
        .apply(comment(&new, "remember me", 5).1)
        .await
        .expect("comment");
    let key = api_key("default", &[Scope::Admin]);
    let key_token = token();
    store.insert_api_key(&key, &key_token).await.expect("key");
    let before = store
        .session(new.created.session.id)
        .await
        .expect("session");
    let events = store
        .events(before.id, Seq::ZERO, 100)
        .await
        .expect("events");

    let store = reopen(store).await;
    assert_eq!(
        store
            .session(before.id)
            .await
            .expect("session after reopen"),
        before
    );
    assert_eq!(
        store
            .events(before.id, Seq::ZERO, 100)
            .await
            .expect("events after reopen"),
        events
    );
    assert_eq!(
        store
            .participant_by_token(&new.host_token)
            .await
            .expect("host"),
        new.created.host
    );
    assert_eq!(store.api_key_by_token(&key_token).await.expect("key"), key);
    let comments = store
        .comments(before.id, Page::first(10))
        .await
        .expect("comments");
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].text.as_str(), "remember me");
}
