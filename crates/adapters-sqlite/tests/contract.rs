//! The storage contract suite against a real SQLite file, one fresh file per test.

use tandem_sqlite::SqliteStore;
use tempfile::TempDir;

/// A store over a new database file; the directory lives as long as the test.
async fn new_store() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open_file(&dir.path().join("tandem.db"))
        .await
        .expect("open");
    (store, dir)
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (store, _dir) = new_store().await;
            tandem_ports::testing::contract::$name(store).await;
        }
    )*};
}

tandem_ports::for_each_contract_test!(contract);

macro_rules! webhook_contract {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (store, _dir) = new_store().await;
            tandem_ports::testing::webhooks::$name(store).await;
        }
    )*};
}

tandem_ports::for_each_webhook_contract_test!(webhook_contract);

#[tokio::test]
async fn survives_reopening() {
    let (store, dir) = new_store().await;
    let path = dir.path().join("tandem.db");
    tandem_ports::testing::contract::survives_reopening(store, |store| async move {
        store.close().await;
        SqliteStore::open_file(&path).await.expect("reopen")
    })
    .await;
}

#[tokio::test]
async fn opens_by_url_and_creates_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("by-url.db");
    let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .expect("open");
    tandem_ports::SessionStore::ping(&store)
        .await
        .expect("ping");
    assert!(path.exists());
}

#[tokio::test]
async fn leases_of_a_closed_store_are_free_at_once() {
    let (store, dir) = new_store().await;
    let path = dir.path().join("tandem.db");
    tandem_ports::testing::contract::leases_of_a_closed_store_are_free_at_once(
        store,
        |store| async move {
            store.close().await;
            SqliteStore::open_file(&path).await.expect("reopen")
        },
    )
    .await;
}

/// One server process runs prompts on a SQLite file: a second store that would
/// hold leases on the same file is refused while the first is open, and
/// accepted once it closed (its process ended).
#[tokio::test]
async fn one_store_at_a_time_holds_leases_on_a_file() {
    use tandem_ports::SessionStore;
    let (first, dir) = new_store().await;
    let path = dir.path().join("tandem.db");
    first.register_lease_holder("first").await.expect("first");
    let lock = first.lock_file().expect("a file database has a lock file");
    assert_eq!(lock, dir.path().join("tandem.db.lock"));

    let second = SqliteStore::open_file(&path)
        .await
        .expect("a second store opens");
    let refused = second
        .register_lease_holder("second")
        .await
        .expect_err("but cannot hold leases")
        .to_string();
    assert!(refused.contains("another tandem server"), "{refused}");
    assert!(refused.contains("tandem.db.lock"), "{refused}");

    first.close().await;
    second
        .register_lease_holder("second")
        .await
        .expect("the first closed: the second may hold leases");
}
