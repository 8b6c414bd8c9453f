//! The storage contract under the concurrency a group commit creates: changes
//! sent at the same moment may be written together (one transaction for many),
//! yet each must come back as if it had been written alone: refused alone,
//! numbered gaplessly within its session, never half written.

use std::collections::BTreeMap;

use tandem_domain::{Comment, CommentId, CommentText, ParticipantId, Seq, SessionId, TextLimits};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::fixtures::{NewSession, at, session};
use crate::{Change, Page, SessionStore, StoreError, Write};

async fn create<S: SessionStore>(store: &S, new: &NewSession) {
    store
        .apply(new.change())
        .await
        .unwrap_or_else(|e| panic!("creating a session failed: {e}"));
}

/// A comment by the session's host, and the change that stores it.
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

/// Reads a session's log and checks it holds exactly `1..=last`, each seq once,
/// that the session's `last_seq` says the same, and that it holds `comments`.
async fn assert_gapless<S: SessionStore>(store: &S, id: SessionId, last: u64, comments: usize) {
    let stored = store.events(id, Seq::ZERO, 10_000).await.expect("events");
    let stored: Vec<u64> = stored.iter().map(|event| event.seq.get()).collect();
    assert_eq!(stored, (1..=last).collect::<Vec<_>>(), "session {id}'s log");
    assert_eq!(
        store.session(id).await.expect("session").last_seq,
        Seq::new(last)
    );
    assert_eq!(
        store
            .comments(id, Page::first(1000))
            .await
            .expect("comments")
            .len(),
        comments,
        "session {id}'s comments"
    );
}

/// Changes sent at the same moment, among them one of every kind of refusal
/// (a closed session, a lost lease, a duplicate id, an author who does not
/// exist): each refused change fails alone with its own error and leaves
/// nothing behind; every other change, a runner's under its lease included,
/// is written, and the logs stay gapless.
pub async fn a_refused_change_among_simultaneous_ones_fails_alone<S: SessionStore + Clone>(
    store: S,
) {
    const COMMENTS: i64 = 24;
    store
        .register_lease_holder("runner")
        .await
        .expect("register");
    store
        .register_lease_holder("other-runner")
        .await
        .expect("register");
    let open = session();
    let closed = session();
    create(&store, &open).await;
    create(&store, &closed).await;
    let open_id = open.created.session.id;
    assert!(
        store
            .acquire_agent_lease(open_id, "runner", at(0), at(3600))
            .await
            .expect("acquire")
    );
    let ended = store
        .session(closed.created.session.id)
        .await
        .expect("session")
        .close(&closed.created.host, None, at(1))
        .expect("close");
    store
        .apply(
            Change::new(closed.created.session.id)
                .write(Write::UpdateSession(ended.state))
                .events(ended.events),
        )
        .await
        .expect("close");
    let (first, first_change) = comment(&open, "first", 2);
    store.apply(first_change).await.expect("first");

    let mut stranger = comment(&open, "by nobody", 3).0;
    stranger.id = CommentId::from_uuid(Uuid::now_v7());
    stranger.author = ParticipantId::from_uuid(Uuid::now_v7());
    let refused = [
        ("inactive", comment(&closed, "too late", 3).1),
        (
            "lease lost",
            comment(&open, "stale runner", 3)
                .1
                .under_lease("other-runner"),
        ),
        (
            "duplicate",
            Change::new(open_id)
                .write(Write::InsertComment(first.clone()))
                .events(comment(&open, "again", 3).1.events),
        ),
        (
            "no such author",
            Change::new(open_id)
                .write(Write::InsertComment(stranger))
                .events(comment(&open, "by nobody", 3).1.events),
        ),
    ];
    let mut tasks = JoinSet::new();
    let half = usize::try_from(COMMENTS / 2).expect("small");
    let mut accepted = Vec::new();
    for n in 0..COMMENTS {
        let (_, change) = comment(&open, &format!("comment {n}"), 10 + n);
        // Every other one is a runner's change, under its lease.
        accepted.push(if n % 2 == 0 {
            change.under_lease("runner")
        } else {
            change
        });
    }
    let mut refused = refused.into_iter();
    for (n, change) in accepted.into_iter().enumerate() {
        let writer = store.clone();
        tasks.spawn(async move { ("ok", writer.apply(change).await) });
        if n % (half / 2) == 0
            && let Some((what, change)) = refused.next()
        {
            let writer = store.clone();
            tasks.spawn(async move { (what, writer.apply(change).await) });
        }
    }
    let mut returned = Vec::new();
    let mut refusals = BTreeMap::new();
    while let Some(result) = tasks.join_next().await {
        match result.expect("task") {
            ("ok", Ok(events)) => returned.extend(events.iter().map(|event| event.seq.get())),
            (what @ "inactive", Err(StoreError::SessionInactive))
            | (what @ "lease lost", Err(StoreError::LeaseLost))
            | (what @ "duplicate", Err(StoreError::Duplicate))
            | (what @ "no such author", Err(StoreError::NotFound)) => {
                *refusals.entry(what).or_insert(0) += 1;
            }
            (what, outcome) => panic!("a change expected {what} came back {outcome:?}"),
        }
    }
    assert_eq!(
        refusals.into_iter().collect::<Vec<_>>(),
        vec![
            ("duplicate", 1),
            ("inactive", 1),
            ("lease lost", 1),
            ("no such author", 1)
        ],
        "each refused change was refused, with its own error"
    );
    returned.sort_unstable();
    let last = 3 + u64::try_from(COMMENTS).expect("small");
    assert_eq!(
        returned,
        (4..=last).collect::<Vec<_>>(),
        "each written change got its own seqs"
    );
    assert_gapless(
        &store,
        open_id,
        last,
        usize::try_from(COMMENTS).expect("small") + 1,
    )
    .await;
    assert_gapless(&store, closed.created.session.id, 3, 0).await;
}

/// One hot session and many cold ones written at the same moment, in several
/// waves: every change is written, the hot session's changes are numbered one
/// after another in one gapless log, each cold session's log is its own, and
/// what each writer was told matches what is stored.
pub async fn simultaneous_changes_to_one_hot_session_and_many_cold_ones<S: SessionStore + Clone>(
    store: S,
) {
    const COLD: usize = 30;
    const WAVES: i64 = 4;
    const HOT_PER_WAVE: i64 = 20;
    let hot = session();
    create(&store, &hot).await;
    let cold: Vec<NewSession> = (0..COLD).map(|_| session()).collect();
    for new in &cold {
        create(&store, new).await;
    }
    let mut told: BTreeMap<SessionId, Vec<(u64, CommentId)>> = BTreeMap::new();
    for wave in 0..WAVES {
        let mut tasks = JoinSet::new();
        for n in 0..HOT_PER_WAVE {
            let (posted, change) = comment(&hot, &format!("hot {wave}/{n}"), 10 + wave);
            let writer = store.clone();
            tasks.spawn(async move { (posted, writer.apply(change).await) });
            if let Some(new) = usize::try_from(n)
                .ok()
                .and_then(|n| cold.get((usize::try_from(wave).expect("small") * 7 + n) % COLD))
            {
                let (posted, change) = comment(new, &format!("cold {wave}/{n}"), 10 + wave);
                let writer = store.clone();
                tasks.spawn(async move { (posted, writer.apply(change).await) });
            }
        }
        while let Some(result) = tasks.join_next().await {
            let (posted, written) = result.expect("task");
            let events = written.unwrap_or_else(|e| panic!("a change failed: {e}"));
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].session_id, posted.session_id);
            told.entry(posted.session_id)
                .or_default()
                .push((events[0].seq.get(), posted.id));
        }
    }
    for new in std::iter::once(&hot).chain(&cold) {
        let id = new.created.session.id;
        let mut mine = told.remove(&id).unwrap_or_default();
        mine.sort_unstable();
        let count = u64::try_from(mine.len()).expect("small");
        assert_eq!(
            mine.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
            (3..3 + count).collect::<Vec<_>>(),
            "session {id}: each writer was told its own seq"
        );
        assert_gapless(&store, id, 2 + count, mine.len()).await;
        // The event at each seq is the comment its writer was told about.
        let log = store.events(id, Seq::new(2), 1000).await.expect("events");
        for (event, (seq, comment)) in log.iter().zip(&mine) {
            assert_eq!(event.seq.get(), *seq);
            let data = event.payload.data();
            assert_eq!(
                data.get("id").and_then(|v| v.as_str()),
                Some(comment.as_uuid().to_string().as_str()),
                "session {id}, seq {seq}"
            );
        }
    }
    assert_eq!(
        u64::try_from(
            store
                .comments(hot.created.session.id, Page::first(1000))
                .await
                .expect("comments")
                .len()
        )
        .expect("small"),
        u64::try_from(WAVES * HOT_PER_WAVE).expect("small")
    );
}
