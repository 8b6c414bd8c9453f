//! Recognising bearer tokens: participants' tokens, API keys, and the ones that
//! must stop working.

use tandem_domain::{InviteRole, Role, Scope};
use tandem_ports::Page;
use tandem_service::{Caller, NewSession, ServiceError};

use crate::common::{Harness, assert_err, comment};

#[tokio::test]
async fn unknown_tokens_are_unauthenticated() {
    let h = Harness::new().await;
    let created = h.create(NewSession::default()).await;
    let host_token = created.host_token.expose();
    // A token of the right shape that was never issued, of either kind.
    let forged_participant = format!("tdm_pt_{}", "0".repeat(64));
    let forged_key = format!("tdm_key_{}", "0".repeat(64));
    for token in [
        "",
        "garbage",
        forged_participant.as_str(),
        forged_key.as_str(),
        &host_token[..host_token.len() - 1],
        &format!("{host_token}0"),
    ] {
        assert_err!(
            h.tandem.authenticate(token).await,
            ServiceError::Unauthenticated
        );
    }
}

#[tokio::test]
async fn tokens_name_their_holder() {
    let h = Harness::new().await;
    let created = h.create(NewSession::default()).await;
    let member = h.join(created.invite_token.expose(), "Ann").await;
    match h.caller(&member.token).await {
        Caller::Participant(participant) => {
            assert_eq!(participant, member.participant);
            assert_eq!(participant.role, Role::Collaborator);
        }
        other @ Caller::ApiKey(_) => panic!("a participant token gave {other:?}"),
    }
    match h.admin() {
        Caller::ApiKey(key) => {
            assert!(key.allows(Scope::Admin));
            assert_eq!(key.workspace_id.as_str(), "default");
        }
        other @ Caller::Participant(_) => panic!("the admin key gave {other:?}"),
    }
}

#[tokio::test]
async fn a_revoked_key_is_unauthenticated() {
    let h = Harness::new().await;
    let created = h
        .tandem
        .create_api_key(
            h.admin(),
            tandem_domain::ApiKeyName::parse("ci").expect("name"),
            [Scope::SessionsRead].into(),
        )
        .await
        .expect("create");
    let key = h.caller(created.secret.expose()).await;
    h.tandem
        .list_sessions(&key, None, Page::first(1))
        .await
        .expect("the key works before it is revoked");
    h.tandem
        .revoke_api_key(h.admin(), created.key.id)
        .await
        .expect("revoke");
    assert_err!(
        h.tandem.authenticate(created.secret.expose()).await,
        ServiceError::Unauthenticated
    );
}

#[tokio::test]
async fn a_departed_or_removed_participants_token_is_gone() {
    let h = Harness::new().await;
    let created = h.create(NewSession::default()).await;
    let id = created.session.id;
    let host = h.caller(created.host_token.expose()).await;
    let leaver = h.join(created.invite_token.expose(), "Leaver").await;
    let removed = h.join(created.invite_token.expose(), "Removed").await;
    let viewer_invite = h
        .tandem
        .create_invite(&host, id, crate::common::invite(InviteRole::Viewer, None))
        .await
        .expect("invite");
    let viewer = h.join(viewer_invite.token.expose(), "Viewer").await;

    h.tandem.leave(&leaver.caller, id).await.expect("leave");
    h.tandem.leave(&viewer.caller, id).await.expect("leave");
    h.tandem
        .remove_participant(&host, id, removed.participant.id)
        .await
        .expect("remove");

    for member in [&leaver, &viewer, &removed] {
        h.assert_token_gone(&member.token, id).await;
        // A caller recognised before it left is refused on its next write as well.
        assert_err!(
            h.tandem
                .post_comment(&member.caller, id, comment("still here?"))
                .await,
            ServiceError::ParticipantGone
        );
    }
    // Everyone else is unaffected.
    assert!(matches!(
        h.tandem.authenticate(created.host_token.expose()).await,
        Ok(Caller::Participant(_))
    ));
}
