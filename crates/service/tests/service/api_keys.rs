//! API keys: admins create, list and revoke their workspace's keys; the operator
//! bootstraps the first admin key, once.

use std::collections::BTreeSet;
use std::sync::Arc;

use tandem_domain::{ApiKeyId, ApiKeyName, DomainError, Scope, ValidationProblem};
use tandem_ports::Page;
use tandem_service::{Caller, Invalid, NewSession, Resource, ServiceError};
use tokio::sync::Barrier;

use crate::common::{Harness, assert_err};

fn key_name(text: &str) -> ApiKeyName {
    ApiKeyName::parse(text).expect("key name")
}

fn scopes(list: &[Scope]) -> BTreeSet<Scope> {
    list.iter().copied().collect()
}

#[tokio::test]
async fn an_admin_creates_keys_for_its_own_workspace() {
    let h = Harness::new().await;
    let created = h
        .tandem
        .create_api_key(
            h.admin(),
            key_name("ci"),
            scopes(&[Scope::SessionsRead, Scope::SessionsWrite]),
        )
        .await
        .expect("create");
    assert!(created.secret.expose().starts_with("tdm_key_"));
    assert_eq!(created.secret.expose().len(), "tdm_key_".len() + 64);
    assert_eq!(created.key.workspace_id.as_str(), "default");
    assert_eq!(created.key.name.as_str(), "ci");
    assert_eq!(created.key.created_at, h.now());
    assert_eq!(created.key.revoked_at, None);
    assert_eq!(
        h.store().api_key(created.key.id).await.expect("stored"),
        created.key
    );
    // The secret works, with exactly the scopes given.
    let ci = h.caller(created.secret.expose()).await;
    assert_eq!(ci, Caller::ApiKey(created.key.clone()));
    h.tandem
        .create_session(&ci, NewSession::default())
        .await
        .expect("sessions:write creates sessions");
    assert_err!(
        h.tandem
            .create_api_key(&ci, key_name("escalate"), scopes(&[Scope::Admin]))
            .await,
        ServiceError::MissingScope(Scope::Admin)
    );
    let created_session = h.create(NewSession::default()).await;
    let host = h.caller(created_session.host_token.expose()).await;
    assert_err!(
        h.tandem
            .create_api_key(
                &host,
                key_name("participant"),
                scopes(&[Scope::SessionsRead])
            )
            .await,
        ServiceError::ApiKeyRequired
    );
    assert_err!(
        h.tandem
            .create_api_key(h.admin(), key_name("empty"), BTreeSet::new())
            .await,
        ServiceError::Invalid(Invalid(errors)) if errors.len() == 1 && errors[0].field == "scopes"
    );
    // Only the admin's and the ci key exist.
    assert_eq!(
        h.tandem
            .list_api_keys(h.admin(), Page::first(10))
            .await
            .expect("list")
            .len(),
        2
    );
}

#[tokio::test]
async fn an_admin_lists_only_its_own_workspaces_keys_newest_first() {
    let h = Harness::new().await;
    let Caller::ApiKey(bootstrap) = h.admin().clone() else {
        panic!("the admin caller is a key");
    };
    let mut ours = vec![bootstrap.id];
    for n in 0..3 {
        let created = h
            .tandem
            .create_api_key(
                h.admin(),
                key_name(&format!("key {n}")),
                scopes(&[Scope::SessionsRead]),
            )
            .await
            .expect("create");
        ours.push(created.key.id);
    }
    let other_admin = h.key("team-b", &[Scope::Admin]).await;
    let theirs = h
        .tandem
        .create_api_key(
            &other_admin,
            key_name("b ci"),
            scopes(&[Scope::SessionsRead]),
        )
        .await
        .expect("create");
    assert_eq!(theirs.key.workspace_id.as_str(), "team-b");

    let listed = h
        .tandem
        .list_api_keys(h.admin(), Page::first(10))
        .await
        .expect("list");
    let newest_first: Vec<ApiKeyId> = ours.iter().rev().copied().collect();
    assert_eq!(
        listed.iter().map(|k| k.id).collect::<Vec<_>>(),
        newest_first
    );
    assert!(listed.iter().all(|k| k.workspace_id.as_str() == "default"));

    let page = h
        .tandem
        .list_api_keys(
            h.admin(),
            Page {
                after: Some(newest_first[1]),
                limit: 10,
            },
        )
        .await
        .expect("page");
    assert_eq!(
        page.iter().map(|k| k.id).collect::<Vec<_>>(),
        newest_first[2..]
    );

    let theirs_listed = h
        .tandem
        .list_api_keys(&other_admin, Page::first(10))
        .await
        .expect("list");
    assert_eq!(theirs_listed.len(), 2);
    assert!(
        theirs_listed
            .iter()
            .all(|k| k.workspace_id.as_str() == "team-b")
    );

    let reader = h
        .key("default", &[Scope::SessionsRead, Scope::SessionsWrite])
        .await;
    assert_err!(
        h.tandem.list_api_keys(&reader, Page::first(10)).await,
        ServiceError::MissingScope(Scope::Admin)
    );
}

#[tokio::test]
async fn a_revoked_key_stops_working_at_once() {
    let h = Harness::new().await;
    let created = h
        .tandem
        .create_api_key(h.admin(), key_name("old"), scopes(&[Scope::Admin]))
        .await
        .expect("create");
    let revoked = h
        .tandem
        .revoke_api_key(h.admin(), created.key.id)
        .await
        .expect("revoke");
    assert_eq!(revoked.revoked_at, Some(h.now()));
    assert_eq!(
        h.store()
            .api_key(created.key.id)
            .await
            .expect("kept")
            .revoked_at,
        Some(h.now())
    );
    assert_err!(
        h.tandem.authenticate(created.secret.expose()).await,
        ServiceError::Unauthenticated
    );
    assert_err!(
        h.tandem.revoke_api_key(h.admin(), created.key.id).await,
        ServiceError::Rule(DomainError::ApiKeyRevoked)
    );
    // It is still listed, marked as revoked.
    let listed = h
        .tandem
        .list_api_keys(h.admin(), Page::first(10))
        .await
        .expect("list");
    assert!(
        listed
            .iter()
            .any(|k| k.id == created.key.id && k.revoked_at.is_some())
    );
}

#[tokio::test]
async fn keys_of_another_workspace_cannot_be_revoked() {
    let h = Harness::new().await;
    let other_admin = h.key("team-b", &[Scope::Admin]).await;
    let Caller::ApiKey(bootstrap) = h.admin().clone() else {
        panic!("the admin caller is a key");
    };
    assert_err!(
        h.tandem.revoke_api_key(&other_admin, bootstrap.id).await,
        ServiceError::NotFound(Resource::ApiKey)
    );
    assert_err!(
        h.tandem
            .revoke_api_key(h.admin(), ApiKeyId::from_uuid(uuid::Uuid::now_v7()))
            .await,
        ServiceError::NotFound(Resource::ApiKey)
    );
    let writer = h.key("default", &[Scope::SessionsWrite]).await;
    assert_err!(
        h.tandem.revoke_api_key(&writer, bootstrap.id).await,
        ServiceError::MissingScope(Scope::Admin)
    );
    assert!(
        h.store()
            .api_key(bootstrap.id)
            .await
            .expect("read")
            .revoked_at
            .is_none()
    );
}

#[tokio::test]
async fn the_admin_key_is_bootstrapped_only_once() {
    let h = Harness::new().await;
    assert!(
        h.tandem
            .bootstrap_admin_key(None)
            .await
            .expect("bootstrap")
            .is_none(),
        "an admin key exists already"
    );
    assert!(
        h.tandem
            .bootstrap_admin_key(Some("x".repeat(40)))
            .await
            .expect("bootstrap")
            .is_none()
    );
    assert_err!(
        h.tandem.authenticate(&"x".repeat(40)).await,
        ServiceError::Unauthenticated
    );
    assert_eq!(
        h.tandem
            .list_api_keys(h.admin(), Page::first(10))
            .await
            .expect("list")
            .len(),
        1
    );
}

#[tokio::test]
async fn the_operator_supplies_a_secret_of_at_least_32_characters() {
    let h = Harness::bare().await;
    for short in ["", "short", &"s".repeat(31)] {
        assert_err!(
            h.tandem.bootstrap_admin_key(Some(short.to_owned())).await,
            ServiceError::Invalid(Invalid(errors))
                if errors.len() == 1
                    && matches!(errors[0].problem, ValidationProblem::OutOfRange(_))
        );
    }
    // Characters, not bytes: 31 two-byte characters are still too short.
    assert_err!(
        h.tandem.bootstrap_admin_key(Some("é".repeat(31))).await,
        ServiceError::Invalid(_)
    );
    // Nothing was created by the refusals.
    assert!(
        h.store()
            .api_keys(None, Page::first(10))
            .await
            .expect("read")
            .is_empty()
    );

    let secret = "operator-chosen-secret-of-32-chr";
    assert_eq!(secret.len(), 32);
    let created = h
        .tandem
        .bootstrap_admin_key(Some(secret.to_owned()))
        .await
        .expect("bootstrap")
        .expect("created");
    assert_eq!(created.secret.expose(), secret);
    assert_eq!(created.key.workspace_id.as_str(), "default");
    assert_eq!(created.key.scopes, scopes(&[Scope::Admin]));
    let admin = h.caller(secret).await;
    assert_eq!(admin, Caller::ApiKey(created.key.clone()));
    h.tandem
        .create_session(&admin, NewSession::default())
        .await
        .expect("the operator's key works");
    assert!(
        h.tandem
            .bootstrap_admin_key(None)
            .await
            .expect("bootstrap")
            .is_none()
    );
}

#[tokio::test]
async fn revoking_the_last_admin_key_lets_a_new_one_be_bootstrapped() {
    let h = Harness::new().await;
    let Caller::ApiKey(bootstrap) = h.admin().clone() else {
        panic!("the admin caller is a key");
    };
    h.tandem
        .revoke_api_key(h.admin(), bootstrap.id)
        .await
        .expect("revoke");
    let again = h
        .tandem
        .bootstrap_admin_key(None)
        .await
        .expect("bootstrap")
        .expect("no admin key is left, so a new one is made");
    assert!(again.secret.expose().starts_with("tdm_key_"));
    h.caller(again.secret.expose()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_bootstraps_create_one_admin_key() {
    let h = Harness::bare().await;
    let barrier = Arc::new(Barrier::new(4));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let tandem = h.tandem.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                tandem.bootstrap_admin_key(None).await
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        if task.await.expect("task").expect("bootstrap").is_some() {
            created += 1;
        }
    }
    assert_eq!(created, 1);
    assert_eq!(
        h.store()
            .api_keys(None, Page::first(10))
            .await
            .expect("read")
            .len(),
        1
    );
}

/// The operator's secret is taken as it is, but `authenticate` sends any token that
/// starts with `tdm_pt_` to the participants' table only: an operator secret with
/// that prefix is accepted by `bootstrap_admin_key` and then never authenticates.
/// Either the bootstrap should refuse such a secret or the lookup should not
/// depend on the prefix.
#[tokio::test]
async fn any_accepted_bootstrap_secret_authenticates() {
    let h = Harness::bare().await;
    let secret = format!("tdm_pt_{}", "a".repeat(40));
    let accepted = h.tandem.bootstrap_admin_key(Some(secret.clone())).await;
    if let Ok(Some(_)) = accepted {
        assert!(
            h.tandem.authenticate(&secret).await.is_ok(),
            "the bootstrap admin key was created but does not authenticate"
        );
    }
}
