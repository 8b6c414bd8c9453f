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
