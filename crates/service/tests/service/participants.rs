//! The host's role changes and removals, and leaving.

use tandem_domain::{Action, DomainError, EventPayload, InviteRole, Role, SessionMode};
use tandem_service::{Resource, ServiceError};

use crate::common::{Harness, assert_err, comment, prompt};

#[tokio::test]
async fn the_host_changes_a_role_and_it_applies_to_the_next_action() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptDirect).await;
    let collaborator = &party.collaborator;

    let changed = h
        .tandem
        .change_role(
            &party.host,
            party.id,
            collaborator.participant.id,
            InviteRole::Viewer,
        )
        .await
        .expect("change role");
    assert_eq!(changed.role, Role::Viewer);
    assert_eq!(h.stored_participant(collaborator).await.role, Role::Viewer);
    assert_eq!(
        h.log(party.id).await.pop().expect("events").payload,
        EventPayload::ParticipantUpdated {
            participant_id: collaborator.participant.id,
            role: Role::Viewer
        }
    );
    // The caller was recognised as a collaborator; the service re-reads its role.
    assert_err!(
        h.tandem
            .post_comment(&collaborator.caller, party.id, comment("can I still?"))
            .await,
        ServiceError::Rule(DomainError::Forbidden {
            action: Action::Comment,
            role: Role::Viewer
        })
    );
    // And back: the viewer is promoted.
    h.tandem
        .change_role(
            &party.host,
            party.id,
            party.viewer.participant.id,
            InviteRole::Collaborator,
        )
        .await
        .expect("promote");
    let submitted = h
        .tandem
        .submit_prompt(&party.viewer.caller, party.id, prompt("now I may"))
        .await
        .expect("a promoted viewer prompts");
    assert_eq!(submitted.author, party.viewer.participant.id);
}

#[tokio::test]
async fn role_changes_that_are_refused() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    let before = h.log(party.id).await.len();

    assert_err!(
        h.tandem
            .change_role(
                &party.collaborator.caller,
                party.id,
                party.viewer.participant.id,
                InviteRole::Collaborator
            )
            .await,
        ServiceError::Rule(DomainError::Forbidden {
            action: Action::ManageSession,
            role: Role::Collaborator
        })
    );
    assert_err!(
        h.tandem
            .change_role(&party.host, party.id, party.host_id(), InviteRole::Viewer)
            .await,
        ServiceError::Rule(DomainError::HostIsFixed)
    );
    assert_err!(
        h.tandem
            .change_role(
                &party.host,
                party.id,
                party.viewer.participant.id,
                InviteRole::Viewer
            )
            .await,
        ServiceError::Rule(DomainError::RoleUnchanged)
    );
    let elsewhere = h.party(SessionMode::PromptWithApproval).await;
    assert_err!(
        h.tandem
            .change_role(
                &party.host,
                party.id,
                elsewhere.collaborator.participant.id,
                InviteRole::Viewer
            )
            .await,
        ServiceError::NotFound(Resource::Participant)
    );
    assert_eq!(h.log(party.id).await.len(), before);
    assert_eq!(
        h.stored_participant(&elsewhere.collaborator).await.role,
        Role::Collaborator
    );
}

#[tokio::test]
async fn the_host_removes_a_participant_whose_token_then_fails() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptDirect).await;
    let target = &party.collaborator;

    assert_err!(
        h.tandem
            .remove_participant(&party.viewer.caller, party.id, target.participant.id)
            .await,
        ServiceError::Rule(DomainError::Forbidden {
            action: Action::ManageSession,
            role: Role::Viewer
        })
    );
    assert_err!(
        h.tandem
            .remove_participant(&party.host, party.id, party.host_id())
            .await,
        ServiceError::Rule(DomainError::HostIsFixed)
    );

    let removed = h
        .tandem
        .remove_participant(&party.host, party.id, target.participant.id)
        .await
        .expect("remove");
    assert_eq!(removed.left_at, Some(h.now()));
    assert_eq!(removed.removed_by, Some(party.host_id()));
    let in_store = h.stored_participant(target).await;
    assert!(!in_store.is_present());
    assert_eq!(in_store.removed_by, Some(party.host_id()));
    assert_eq!(
        h.log(party.id).await.pop().expect("events").payload,
        EventPayload::ParticipantRemoved {
            participant_id: target.participant.id,
            removed_by: party.host_id()
        }
    );

    h.assert_token_gone(&target.token, party.id).await;
    assert_err!(
        h.tandem
            .submit_prompt(&target.caller, party.id, prompt("let me back in"))
            .await,
        ServiceError::ParticipantGone
    );
    assert_err!(
        h.tandem.leave(&target.caller, party.id).await,
        ServiceError::ParticipantGone
    );
    // Removing twice is refused; the record stays, marked as removed.
    assert_err!(
        h.tandem
            .remove_participant(&party.host, party.id, target.participant.id)
            .await,
        ServiceError::Rule(DomainError::ParticipantGone)
    );
    let everyone = h
        .tandem
        .list_participants(&party.host, party.id)
        .await
        .expect("list");
    assert_eq!(everyone.len(), 3);
    assert!(
        everyone
            .iter()
            .any(|p| p.id == target.participant.id && !p.is_present())
    );
    assert_eq!(h.count(party.id, "participant.removed").await, 1);
}

#[tokio::test]
async fn the_host_cannot_leave_but_others_can() {
    let h = Harness::new().await;
    let party = h.party(SessionMode::PromptWithApproval).await;
    assert_err!(
        h.tandem.leave(&party.host, party.id).await,
        ServiceError::Rule(DomainError::HostCannotLeave)
    );
    assert_eq!(h.count(party.id, "participant.left").await, 0);

    let left = h
        .tandem
        .leave(&party.collaborator.caller, party.id)
        .await
        .expect("a collaborator leaves");
    assert_eq!(left.left_at, Some(h.now()));
    assert_eq!(left.removed_by, None);
    assert_eq!(
        h.log(party.id).await.pop().expect("events").payload,
        EventPayload::ParticipantLeft {
            participant_id: party.collaborator.participant.id
        }
    );
    h.assert_token_gone(&party.collaborator.token, party.id)
        .await;
    assert_err!(
        h.tandem.leave(&party.collaborator.caller, party.id).await,
        ServiceError::ParticipantGone
    );
    h.tandem
        .leave(&party.viewer.caller, party.id)
        .await
        .expect("a viewer leaves");
    assert_eq!(h.count(party.id, "participant.left").await, 2);

    // Leaving does not end the session; the host goes on, and the invite lets
    // the same person back in as a new participant with a new token.
    let back = h.join(&party.invite_token, "Collaborator").await;
    assert_ne!(back.participant.id, party.collaborator.participant.id);
    assert_ne!(back.token, party.collaborator.token);
    h.tandem
        .post_comment(&back.caller, party.id, comment("I'm back"))
        .await
        .expect("comment");
}
