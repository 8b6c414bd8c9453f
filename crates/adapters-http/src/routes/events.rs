//! A session's event log as a JSON page (the SSE form arrives separately).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use tandem_domain::{Seq, SessionId};

use crate::dto::event::{EventPage, EventResponse};
use crate::dto::page::{EventsQuery, limit, next_cursor};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{ApiPath, ApiQuery, Authenticated};
use crate::openapi::{BadRequest, Forbidden, Internal, NotAcceptable, NotFound, Unauthorized};
use crate::state::AppState;

/// Read a page of a session's events.
///
/// The events after `?after=<seq>`, in `seq` order, for polling clients. Send
/// `Accept: application/json`.
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}/events",
    operation_id = "list_events",
    tag = "events",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session's id."), EventsQuery),
    responses(
        (status = 200, description = "A page of events.", body = EventPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 406, response = NotAcceptable),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn list_events(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<SessionId>,
    ApiQuery(query): ApiQuery<EventsQuery>,
    headers: HeaderMap,
) -> Result<Json<EventPage>, ApiError> {
    if !accepts_json(&headers) {
        return Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            ErrorCode::NotAcceptable,
            "this endpoint answers `application/json` for now; the event stream is not served yet",
        ));
    }
    let limit = limit(query.limit)?;
    let after = Seq::new(query.after.unwrap_or(0));
    let events = state.tandem.events(&caller, id, after, limit).await?;
    Ok(Json(EventPage {
        next: next_cursor(&events, limit, |event| event.seq.get()),
        events: events.iter().map(EventResponse::from).collect(),
    }))
}

/// Whether the client takes JSON: no `Accept` header, or a media range that
/// covers `application/json` with a non-zero quality.
fn accepts_json(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::ACCEPT).iter().peekable();
    if values.peek().is_none() {
        return true;
    }
    values
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let essence = parts.next().unwrap_or_default().to_ascii_lowercase();
            let refused = parts.any(|param| {
                param
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            !refused
                && matches!(
                    essence.as_str(),
                    "application/json" | "application/*" | "*/*"
                )
        })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn json_is_accepted_unless_excluded() {
        let mut headers = HeaderMap::new();
        assert!(accepts_json(&headers));
        for (accept, json) in [
            ("application/json", true),
            ("*/*", true),
            ("text/event-stream, application/json;q=0.5", true),
            ("text/event-stream", false),
            ("application/json;q=0", false),
            ("text/html", false),
        ] {
            headers.insert(header::ACCEPT, HeaderValue::from_static(accept));
            assert_eq!(accepts_json(&headers), json, "{accept}");
        }
    }
}
