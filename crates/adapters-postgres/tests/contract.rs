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
