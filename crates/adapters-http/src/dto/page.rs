//! Keyset pagination: `?after=<cursor>&limit=` on every list.

use axum::http::StatusCode;
use serde::Deserialize;
use tandem_ports::Page;
use utoipa::IntoParams;
use uuid::Uuid;

use super::enums::{PromptStatus, SessionStatus};
use crate::error::{ApiError, ErrorCode};

/// The page size when the client names none.
pub(crate) const DEFAULT_LIMIT: u32 = 50;
/// The largest page size a client may ask for.
pub(crate) const MAX_LIMIT: u32 = 200;

/// Checks a requested page size (1..=200, default 50).
pub(crate) fn limit(requested: Option<u32>) -> Result<u32, ApiError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(limit @ 1..=MAX_LIMIT) => Ok(limit),
        Some(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidQueryParameter,
            format!("limit must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

/// A store page request from a uuid cursor, converted to the record's id type.
pub(crate) fn page<C>(
    after: Option<Uuid>,
    requested: Option<u32>,
    id: impl FnOnce(Uuid) -> C,
) -> Result<Page<C>, ApiError> {
    Ok(Page {
        after: after.map(id),
        limit: limit(requested)?,
    })
}

/// The cursor of the next page: the last item's key when the page is full.
pub(crate) fn next_cursor<T, K>(items: &[T], limit: u32, key: impl FnOnce(&T) -> K) -> Option<K> {
    let full = u32::try_from(items.len()).is_ok_and(|len| len >= limit);
    if full { items.last().map(key) } else { None }
}

/// Slices a list the store returns whole (participants, invites) into the same
/// keyset pages as every other list: the items after the one with id `after`.
pub(crate) fn slice<T>(
    items: Vec<T>,
    after: Option<Uuid>,
    limit: u32,
    id: impl Fn(&T) -> Uuid,
) -> Vec<T> {
    let start = match after {
        None => 0,
        Some(after) => items
            .iter()
            .position(|item| id(item) == after)
            .map_or(items.len(), |index| index + 1),
    };
    let take = usize::try_from(limit).unwrap_or(usize::MAX);
    items.into_iter().skip(start).take(take).collect()
}

/// A page of a list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// The `next` cursor of the previous page.
    pub(crate) after: Option<Uuid>,
    /// How many items to return (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub(crate) limit: Option<u32>,
}

/// A page of sessions, optionally of one status.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct SessionListQuery {
    /// Only sessions with this status.
    pub(crate) status: Option<SessionStatus>,
    /// The `next` cursor of the previous page.
    pub(crate) after: Option<Uuid>,
    /// How many sessions to return (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub(crate) limit: Option<u32>,
}

/// A page of prompts, optionally of one status.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PromptListQuery {
    /// Only prompts with this status.
    pub(crate) status: Option<PromptStatus>,
    /// The `next` cursor of the previous page.
    pub(crate) after: Option<Uuid>,
    /// How many prompts to return (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub(crate) limit: Option<u32>,
}

/// A page of a session's events.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventsQuery {
    /// Return the events after this `seq` (default 0: from the start).
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_u64)]
    pub(crate) after: Option<u64>,
    /// How many events to return (default 50; JSON pages only).
    #[param(minimum = 1, maximum = 200)]
    pub(crate) limit: Option<u32>,
    /// A one-use stream ticket (`POST .../stream-tickets`), for clients such as a
    /// browser's `EventSource` that cannot send an `Authorization` header.
    #[param(max_length = 256)]
    pub(crate) ticket: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_and_stay_in_range() {
        assert_eq!(limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit(Some(200)).unwrap(), 200);
        assert_eq!(
            limit(Some(0)).unwrap_err().code(),
            ErrorCode::InvalidQueryParameter
        );
        assert!(limit(Some(201)).is_err());
    }

    #[test]
    fn next_is_the_last_key_of_a_full_page() {
        assert_eq!(next_cursor(&[1, 2, 3], 3, |n| *n), Some(3));
        assert_eq!(next_cursor(&[1, 2], 3, |n| *n), None);
        assert_eq!(next_cursor::<u8, u8>(&[], 3, |n| *n), None);
    }

    #[test]
    fn slices_follow_the_cursor() {
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        assert_eq!(slice(ids.clone(), None, 2, |id| *id), ids[..2]);
        assert_eq!(slice(ids.clone(), Some(ids[1]), 2, |id| *id), ids[2..4]);
        assert!(slice(ids.clone(), Some(ids[4]), 2, |id| *id).is_empty());
        assert!(slice(ids, Some(Uuid::now_v7()), 2, |id| *id).is_empty());
    }
}
