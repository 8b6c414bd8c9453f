//! Comments per the permission matrix: the host always, collaborators unless the
//! session is view-only, viewers never.

use tandem_domain::{Action, DomainError, EventPayload, Role, Scope, SessionMode};
use tandem_ports::Page;
use tandem_service::ServiceError;

use crate::common::{Harness, assert_err, comment};

#[tokio::test]
async fn who_may_comment_in_each_mode() {
    let h = Harness::new().await;
    for mode in SessionMode::ALL.iter().copied() {
        let party = h.party(mode).await;
        let id = party.id;
        let by_host = h
            .tandem
            .post_comment(&party.host, id, comment("from the host"))
            .await
            .expect("the host always comments");
        assert_eq!(by_host.author, party.host_id());

        let by_collaborator = h
            .tandem
            .post_comment(
                &party.collaborator.caller,
                id,
                comment("from a collaborator"),
            )
            .await;
        if mode == SessionMode::ViewOnly {
            assert_err!(
                by_collaborator,
                ServiceError::Rule(DomainError::Forbidden {
                    action: Action::Comment,
                    role: Role::Collaborator
                })
            );
        } else {
            let posted = by_collaborator.expect("collaborators comment");
            assert_eq!(posted.author, party.collaborator.participant.id);
        }
        assert_err!(
            h.tandem
                .post_comment(&party.viewer.caller, id, comment("from a viewer"))
                .await,
            ServiceError::Rule(DomainError::Forbidden {
                action: Action::Comment,
                role: Role::Viewer
            })
        );

        // Everyone reads the same comments, in posting order.
        let expected: Vec<&str> = if mode == SessionMode::ViewOnly {
            vec!["from the host"]
        } else {
            vec!["from the host", "from a collaborator"]
        };
        for reader in [
            &party.host,
            &party.collaborator.caller,
            &party.viewer.caller,
        ] {
            let listed = h
                .tandem
                .list_comments(reader, id, Page::first(10))
                .await
                .expect("list");
            assert_eq!(
                listed.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(),
                expected,
                "{mode}"
            );
        }
        // One event per comment posted; none for the refused ones.
        let posted: Vec<String> = h
            .log(id)
            .await
            .into_iter()
            .filter_map(|event| {
                if let EventPayload::CommentPosted(c) = event.payload {
                    Some(c.text.as_str().to_owned())
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(posted, expected, "{mode}");
    }
}

#[tokio::test]
async fn comments_page_in_posting_order_and_keys_read_but_do_not_post() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::CommentOnly).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let posted = h
            .tandem
            .post_comment(
                &party.collaborator.caller,
                party.id,
                comment(&format!("c{n}")),
            )
            .await
            .expect("post");
        ids.push(posted.id);
    }
    let first = h
        .tandem
        .list_comments(&party.viewer.caller, party.id, Page::first(2))
        .await
        .expect("page");
    assert_eq!(first.iter().map(|c| c.id).collect::<Vec<_>>(), ids[..2]);
    let rest = h
        .tandem
        .list_comments(
            &party.viewer.caller,
            party.id,
            Page {
                after: Some(ids[1]),
                limit: 10,
            },
        )
        .await
        .expect("page");
    assert_eq!(rest.iter().map(|c| c.id).collect::<Vec<_>>(), ids[2..]);

    let reader = h.key("default", &[Scope::SessionsRead]).await;
    assert_eq!(
        h.tandem
            .list_comments(&reader, party.id, Page::first(10))
            .await
            .expect("a key of the workspace reads")
            .len(),
        5
    );
    assert_err!(
        h.tandem
            .post_comment(h.admin(), party.id, comment("from a script"))
            .await,
        ServiceError::ParticipantRequired
    );
}
