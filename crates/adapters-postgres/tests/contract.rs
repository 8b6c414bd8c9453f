//! The storage contract suite against a real Postgres: each test gets a fresh,
//! migrated database from `#[sqlx::test]` (on the server named by `DATABASE_URL`,
//! which `crates/adapters-postgres/.env` points at the local one).

use sqlx::PgPool;
use tandem_postgres::PostgresStore;

macro_rules! contract {
    ($($name:ident),* $(,)?) => {$(
        #[sqlx::test(migrator = "tandem_postgres::MIGRATOR")]
        async fn $name(pool: PgPool) {
            tandem_ports::testing::contract::$name(PostgresStore::from_pool(pool)).await;
        }
    )*};
}

tandem_ports::for_each_contract_test!(contract);

macro_rules! webhook_contract {
    ($($name:ident),* $(,)?) => {$(
        #[sqlx::test(migrator = "tandem_postgres::MIGRATOR")]
        async fn $name(pool: PgPool) {
            tandem_ports::testing::webhooks::$name(PostgresStore::from_pool(pool)).await;
        }
    )*};
}

tandem_ports::for_each_webhook_contract_test!(webhook_contract);

#[sqlx::test(migrator = "tandem_postgres::MIGRATOR")]
async fn survives_reopening(pool: PgPool) {
    let options = pool.connect_options().as_ref().clone();
    tandem_ports::testing::contract::survives_reopening(
        PostgresStore::from_pool(pool),
        |store| async move {
            store.pool().close().await;
            let pool = sqlx::postgres::PgPoolOptions::new()
                .connect_with(options)
                .await
                .expect("reconnect");
            PostgresStore::from_pool(pool)
        },
    )
    .await;
}

#[sqlx::test(migrator = "tandem_postgres::MIGRATOR")]
async fn leases_of_a_closed_store_are_free_at_once(pool: PgPool) {
    let options = pool.connect_options().as_ref().clone();
    tandem_ports::testing::contract::leases_of_a_closed_store_are_free_at_once(
        PostgresStore::from_pool(pool),
        |store| async move {
            tandem_ports::SessionStore::close(&store).await;
            let pool = sqlx::postgres::PgPoolOptions::new()
                .connect_with(options)
                .await
                .expect("reconnect");
            PostgresStore::from_pool(pool)
        },
    )
    .await;
}

/// A holder's connection is what keeps it alive: when the database loses it
/// (a killed replica, or an operator ending the backend), the holder's leases
/// are free; the store reconnects it, and leases taken afterwards hold again.
#[sqlx::test(migrator = "tandem_postgres::MIGRATOR")]
async fn a_holder_is_alive_while_its_connection_is(pool: PgPool) {
    use tandem_ports::SessionStore;
    let store = PostgresStore::from_pool(pool.clone());
    store
        .register_lease_holder("holder-one")
        .await
        .expect("register");
    let alive = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'holder-one'",
        )
        .fetch_one(&pool)
        .await
        .expect("count")
    };
    assert_eq!(alive().await, 1);
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'holder-one'",
    )
    .execute(&pool)
    .await
    .expect("terminate");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while alive().await != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the holder's connection came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    store.close().await;
    let after = PostgresStore::connect(
        &format!(
            "postgres://{}@{}:{}/{}",
            pool.connect_options().get_username(),
            pool.connect_options().get_host(),
            pool.connect_options().get_port(),
            pool.connect_options().get_database().expect("database")
        ),
        1,
    )
    .await
    .expect("connect");
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'holder-one'",
    )
    .fetch_one(after.pool())
    .await
    .expect("count");
    assert_eq!(count, 0, "closing the store ends the holder's connection");
}

/// Comments and prompts sent at the same moment are committed together (a
/// group commit): far fewer transactions than changes, and still each record in
/// the same transaction as its events.
#[sqlx::test(migrator = "tandem_postgres::MIGRATOR")]
async fn simultaneous_changes_share_transactions(pool: PgPool) {
    use tandem_domain::{Comment, CommentId, CommentText, Prompt, TextLimits};
    use tandem_ports::testing::fixtures::{at, prompt_id, prompt_text, session};
    use tandem_ports::{Change, SessionStore, Write};

    const CHANGES: usize = 64;
    let store = PostgresStore::from_pool(pool.clone());
    let sessions: Vec<_> = (0..8).map(|_| session()).collect();
    for new in &sessions {
        store.apply(new.change()).await.expect("create");
    }
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..CHANGES {
        let created = &sessions[n % sessions.len()].created;
        // Every fourth change is a prompt, the others comments.
        let change = if n % 4 == 0 {
            let submitted = Prompt::submit(
                prompt_id(),
                &created.session,
                &created.host,
                prompt_text(&format!("prompt {n}")),
                at(10),
            )
            .expect("submit");
            Change::new(created.session.id)
                .write(Write::InsertPrompt(submitted.state))
                .events(submitted.events)
        } else {
            let posted = Comment::post(
                CommentId::from_uuid(uuid::Uuid::now_v7()),
                &created.session,
                &created.host,
                CommentText::parse(&format!("comment {n}"), &TextLimits::DEFAULT).expect("text"),
                at(10),
            )
            .expect("post");
            Change::new(created.session.id)
                .write(Write::InsertComment(posted.state))
                .events(posted.events)
        };
        let store = store.clone();
        tasks.spawn(async move { store.apply(change).await });
    }
    while let Some(written) = tasks.join_next().await {
        written.expect("task").expect("written");
    }
    let transactions: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT xmin::text) FROM events
          WHERE type IN ('comment.posted', 'prompt.submitted')",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert!(
        transactions <= i64::try_from(CHANGES / 4).expect("small"),
        "{CHANGES} changes sent at once took {transactions} transactions"
    );
    let counts: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM comments c
                   JOIN events e ON e.session_id = c.session_id AND e.data->>'id' = c.id::text
                  WHERE c.xmin::text = e.xmin::text),
                (SELECT count(*) FROM prompts p
                   JOIN events e ON e.session_id = p.session_id AND e.type = 'prompt.submitted'
                                AND e.data->>'id' = p.id::text
                  WHERE p.xmin::text = e.xmin::text)",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(
        counts,
        (
            i64::try_from(CHANGES / 4 * 3).expect("small"),
            i64::try_from(CHANGES / 4).expect("small")
        ),
        "every comment and prompt committed with its event"
    );
}
