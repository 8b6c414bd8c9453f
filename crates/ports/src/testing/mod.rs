#![expect(
    clippy::missing_panics_doc,
    reason = "test support: panicking is how it reports a broken promise"
)]

//! Test support shared by the adapters and the service (feature `testing`): the
//! storage contract suite, fixtures, and a clock tests can move.

mod agent_state;
mod clock;
pub mod contract;
pub mod fixtures;
mod groups;
pub mod webhooks;

pub use clock::ManualClock;

/// Calls `$callback!` with the name of every contract test, so each adapter runs
/// the whole suite by defining one macro that turns a name into a test:
///
/// ```ignore
/// macro_rules! contract {
///     ($($name:ident),*) => {$(
///         #[tokio::test]
///         async fn $name() { tandem_ports::testing::contract::$name(new_store().await).await }
///     )*};
/// }
/// tandem_ports::for_each_contract_test!(contract);
/// ```
#[macro_export]
macro_rules! for_each_contract_test {
    ($callback:ident) => {
        $callback!(
            creates_and_reads_a_session,
            unknown_ids_are_not_found,
            change_of_a_missing_session_is_not_found,
            events_are_numbered_from_one_without_gaps,
            events_page_after_a_seq,
            concurrent_writers_get_gapless_seqs,
            concurrent_changes_fail_alone,
            concurrent_approvals_exactly_one_wins,
            failed_change_leaves_nothing_behind,
            session_with_participant_reads_both,
            stale_update_is_a_conflict,
            ended_session_refuses_further_changes,
            duplicate_token_is_a_duplicate,
            change_cannot_write_into_another_session,
            participants_update_and_token_lookup,
            invites_update_and_token_lookup,
            sessions_list_newest_first_by_workspace_and_status,
            sessions_due_finds_expired_and_idle_sessions,
            activity_only_moves_forward,
            comments_page_in_posting_order,
            prompts_filter_page_and_queue_order,
            prompts_in_status_across_sessions,
            permission_requests_round_trip,
            api_keys_round_trip_and_revoke,
            first_admin_key_is_inserted_once,
            every_event_type_round_trips,
            planned_change_sees_open_work_under_the_lock,
            no_change_slips_between_plan_and_commit,
            invites_are_redeemed_atomically,
            stream_tickets_are_used_once_and_expire,
            agent_leases_admit_one_holder_until_expiry,
            changes_under_a_lease_need_its_holder,
            sessions_awaiting_agent_are_unleased_with_work,
            agent_states_round_trip_under_versions,
            workspace_cleanups_are_found_after_the_session_ended,
            leases_of_holders_not_alive_are_free,
            a_refused_change_among_simultaneous_ones_fails_alone,
            simultaneous_changes_to_one_hot_session_and_many_cold_ones,
            ping_answers
        );
    };
}

/// Calls `$callback!` with the name of every webhook contract test
/// (`testing::webhooks`), as `for_each_contract_test!` does for the rest.
#[macro_export]
macro_rules! for_each_webhook_contract_test {
    ($callback:ident) => {
        $callback!(
            webhooks_round_trip_update_and_delete,
            new_webhooks_start_at_the_end_of_each_log,
            progress_moves_the_cursor_with_its_delivery,
            giving_up_disables_and_a_restart_starts_afresh,
            deliveries_page_filter_and_update,
            webhook_leases_admit_one_holder_until_expiry
        );
    };
}
