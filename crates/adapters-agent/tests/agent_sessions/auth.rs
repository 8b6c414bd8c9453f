//! An agent that requires authentication: the profile's method is used, and
//! without a usable one the start fails naming the agent's methods.

use tandem_domain::StopReason;
use tandem_ports::AgentError;

use crate::common::{echo, executor, new_session, run, start, stop, try_start};

#[tokio::test]
async fn the_profiles_method_authenticates_the_agent() {
    let state = tempfile::tempdir().unwrap();
    let mut profile = echo(state.path(), &["--require-auth"]);
    profile.auth_method = Some("echo-token".to_owned());
    let executor = executor(profile);
    let session = start(&executor, new_session(), None).await;
    let (reason, text) = run(session.as_ref(), "signed in").await;
    assert_eq!((reason, text.as_str()), (StopReason::EndTurn, "signed in"));
    stop(session).await;
}

#[tokio::test]
async fn without_a_usable_method_the_start_fails_naming_the_agents_methods() {
    let state = tempfile::tempdir().unwrap();
    for method in [None, Some("password")] {
        let mut profile = echo(state.path(), &["--require-auth"]);
        profile.auth_method = method.map(str::to_owned);
        let error = try_start(&executor(profile), new_session(), None)
            .await
            .err()
            .expect("refused");
        let AgentError::AuthRequired(message) = &error else {
            panic!("{method:?}: expected authentication required, got {error:?}");
        };
        assert!(
            message.contains("`echo-login` (Echo login)")
                && message.contains("`echo-token` (Echo token)"),
            "{message}"
        );
        if let Some(method) = method {
            assert!(message.contains(method), "{message}");
        }
        assert!(error.to_string().contains("requires authentication"));
    }
}
