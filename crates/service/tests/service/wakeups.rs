//! Stream subscribers are woken through the event bus after every commit, with the
//! highest `seq` committed, and only for their own session.

use chrono::TimeDelta;
use tandem_domain::{DomainError, SessionMode};
use tandem_ports::EventBus;
use tandem_service::ServiceError;

use crate::common::{Harness, assert_err, comment, summary};

#[tokio::test]
async fn a_commit_wakes_its_sessions_subscribers_with_the_last_seq() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    let elsewhere = h.party(SessionMode::PromptWithApproval).await;
    let mut ours = h.bus.subscribe(party.id);
    let theirs = h.bus.subscribe(elsewhere.id);

    h.tandem
        .post_comment(&party.host, party.id, comment("ping"))
        .await
        .expect("comment");
    assert!(ours.has_changed().expect("open"), "the commit woke us");
    assert_eq!(*ours.borrow_and_update(), h.stored(party.id).await.last_seq);
    assert!(!theirs.has_changed().expect("open"));

    // A refused write commits nothing and wakes nobody.
    assert_err!(
        h.tandem
            .post_comment(&party.viewer.caller, party.id, comment("pong"))
            .await,
        ServiceError::Rule(DomainError::Forbidden { .. })
    );
    assert!(!ours.has_changed().expect("open"));

    // Closing wakes the subscribers with the seq of `session.closed`, so that
    // open streams read it and end.
    h.tandem
        .close_session(&party.host, party.id, Some(summary("done")))
        .await
        .expect("close");
    assert!(ours.has_changed().expect("open"));
    let closed_at = *ours.borrow_and_update();
    let last = h.log(party.id).await.pop().expect("events");
    assert_eq!(closed_at, last.seq);
    assert!(last.payload.ends_session());
    assert!(!theirs.has_changed().expect("open"));
}

#[tokio::test]
async fn lazy_expiry_wakes_the_subscribers_too() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    let mut subscriber = h.bus.subscribe(party.id);
    h.advance(TimeDelta::hours(3));
    h.tandem
        .session_details(&party.viewer.caller, party.id)
        .await
        .expect("read");
    assert!(subscriber.has_changed().expect("open"));
    let last = h.log(party.id).await.pop().expect("events");
    assert!(last.payload.ends_session());
    assert_eq!(*subscriber.borrow_and_update(), last.seq);
}
