//! The cross-replica event bus against a real Postgres: two buses on one database
//! stand for two replicas.

use std::time::Duration;

use sqlx::PgPool;
use tandem_domain::Seq;
use tandem_ports::testing::fixtures;
use tandem_ports::{EventBus, SessionStore};
use tandem_postgres::{PostgresEventBus, PostgresStore};
use tokio::sync::watch;

/// Waits (at most 5 s) until the receiver shows at least `seq`.
async fn sees(receiver: &mut watch::Receiver<Seq>, seq: Seq) {
    let arrived = tokio::time::timeout(
        Duration::from_secs(5),
        receiver.wait_for(|current| *current >= seq),
    )
    .await
    .map(|result| result.is_ok());
    assert_eq!(
        arrived,
        Ok(true),
        "no wake-up for seq {seq} within 5 s (saw {})",
        *receiver.borrow()
    );
}

#[sqlx::test(migrator = "tandem_postgres::MIGRATOR")]
async fn a_publish_on_one_replica_wakes_subscribers_on_another(pool: PgPool) {
    let a = PostgresEventBus::start(pool.clone()).await.expect("bus a");
    let b = PostgresEventBus::start(pool.clone()).await.expect("bus b");
    let session = fixtures::session().created.session.id;
    let mut on_b = b.subscribe(session);
    let mut on_a = a.subscribe(session);
    a.publish(session, Seq::new(3));
    sees(&mut on_a, Seq::new(3)).await;
    sees(&mut on_b, Seq::new(3)).await;
    // Bursts are batched; the highest seq arrives.
    for seq in 4..=50 {
        a.publish(session, Seq::new(seq));
    }
    sees(&mut on_b, Seq::new(50)).await;
}

#[sqlx::test(migrator = "tandem_postgres::MIGRATOR")]
async fn a_write_without_notification_is_found_by_polling(pool: PgPool) {
    let store = PostgresStore::from_pool(pool.clone());
    let new = fixtures::session();
    store.apply(new.change()).await.expect("create");
    let bus = PostgresEventBus::start(pool.clone()).await.expect("bus");
    let mut receiver = bus.subscribe(new.created.session.id);
    // Another replica committed two events but its NOTIFY was lost.
    sees(&mut receiver, Seq::new(2)).await;
}

#[sqlx::test(migrator = "tandem_postgres::MIGRATOR")]
async fn the_listener_recovers_after_its_connection_is_killed(pool: PgPool) {
    let store = PostgresStore::from_pool(pool.clone());
    let new = fixtures::session();
    store.apply(new.change()).await.expect("create");
    let session = new.created.session.id;
    let a = PostgresEventBus::start(pool.clone()).await.expect("bus a");
    let b = PostgresEventBus::start(pool.clone()).await.expect("bus b");
    let mut on_b = b.subscribe(session);
    sees(&mut on_b, Seq::new(2)).await;

    // Kill every LISTEN connection, as a database restart would.
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .fetch_all(&pool)
    .await
    .expect("terminate");
    assert!(!killed.is_empty(), "the listeners were found");

    // Events written meanwhile through the other replica still reach b.
    let (_, change) = fixtures::join(&new.created, "Ada", fixtures::at(1));
    let events = store.apply(change).await.expect("join");
    a.publish(session, events[0].seq);
    sees(&mut on_b, Seq::new(3)).await;
    // Both listeners are back...
    let mut listening = 0;
    for _ in 0..50 {
        listening = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
        )
        .fetch_one(&pool)
        .await
        .expect("count");
        if listening >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        listening >= 2,
        "the listeners reconnected ({listening} listening)"
    );
    // ...and live notifications flow again.
    a.publish(session, Seq::new(4));
    sees(&mut on_b, Seq::new(4)).await;
}
