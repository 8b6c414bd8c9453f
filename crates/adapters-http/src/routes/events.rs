//! A session's event log: the live SSE stream, JSON pages, and stream tickets.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tandem_domain::{Seq, SessionId};

use crate::dto::event::{EventPage, EventResponse, StreamTicketResponse};
use crate::dto::page::{EventsQuery, limit, next_cursor};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{ApiPath, ApiQuery, Authenticated, bearer_token};
use crate::openapi::{BadRequest, Forbidden, Internal, NotAcceptable, NotFound, Unauthorized};
use crate::state::AppState;
use crate::stream;

/// Read a session's events: live as Server-Sent Events, or a JSON page.
///
/// With `Accept: text/event-stream`, a stream: each frame carries `id: <seq>`,
/// `event: <type>` and `data: <the event as JSON>`; it replays everything after
/// `Last-Event-ID` (or `?after=`) from the durable log, then goes live, with no gap
/// and no duplicate; a comment every 15 s keeps it open; it ends after
/// `session.closed` or when the participant leaves or is removed. Otherwise a
/// page of the events after `?after=<seq>` (or `Last-Event-ID`), for polling
/// clients. Browsers'
/// `EventSource` passes a one-use `?ticket=` instead of a header.
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}/events",
    operation_id = "list_events",
    tag = "events",
    security(("bearer" = []), ()),
    params(
        ("id" = Uuid, Path, description = "The session's id."),
        ("Last-Event-ID" = Option<String>, Header, nullable = false, description = "Resume after this `seq` (it takes the place of `?after=`): what a reconnecting `EventSource` sends. Empty counts as absent; anything but a `seq` (up to 2^63 - 1) is refused with 400 `BAD_REQUEST`, on the stream and on the JSON page alike."),
        EventsQuery
    ),
    responses(
        (status = 200, description = "A page of events, or the live stream.", content(
            (EventPage = "application/json"),
            (String = "text/event-stream"),
        )),
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
    ApiPath(id): ApiPath<SessionId>,
    ApiQuery(query): ApiQuery<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = match &query.ticket {
        Some(ticket) => state.tandem.redeem_stream_ticket(ticket, id).await?,
        None => state.tandem.authenticate(bearer_token(&headers)?).await?,
    };
    let after = match last_event_id(&headers)? {
        Some(seq) => seq,
        None => cursor(query.after)?,
    };
    if wants_stream(&headers) {
        // Authorized before the stream starts, so that a refusal is a problem
        // document rather than an empty stream.
        let subscription = state.tandem.subscribe(&caller, id, Seq::new(after)).await?;
        let body = stream::body(subscription, state.keep_alive);
        return Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            .header("x-accel-buffering", "no")
            .body(body)
            .map_err(|_| ApiError::internal());
    }
    if !accepts_json(&headers) {
        return Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            ErrorCode::NotAcceptable,
            "this endpoint answers `application/json` or `text/event-stream`",
        ));
    }
    let limit = limit(query.limit)?;
    let after = Seq::new(after);
    let events = state.tandem.events(&caller, id, after, limit).await?;
    Ok(Json(EventPage {
        next: next_cursor(&events, limit, |event| event.seq.get()),
        events: events.iter().map(EventResponse::from).collect(),
    })
    .into_response())
}

/// Issue a stream ticket.
///
/// A one-use ticket, valid 60 seconds, that opens this session's event stream as
/// `GET .../events?ticket=...` — for a browser's `EventSource`, which cannot send
/// an `Authorization` header. Tokens never go in URLs; a used ticket is worthless.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/stream-tickets",
    operation_id = "create_stream_ticket",
    tag = "events",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session's id.")),
    responses(
        (status = 201, description = "The ticket, shown once.", body = StreamTicketResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn create_stream_ticket(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<SessionId>,
) -> Result<(StatusCode, Json<StreamTicketResponse>), ApiError> {
    let issued = state.tandem.create_stream_ticket(&caller, id).await?;
    let ticket = issued.ticket.expose().to_owned();
    Ok((
        StatusCode::CREATED,
        Json(StreamTicketResponse {
            url: format!(
                "{}/v1/sessions/{id}/events?ticket={ticket}",
                state.public_url
            ),
            ticket,
            expires_at: issued.expires_at,
        }),
    ))
}

/// Whether the client asks for the live stream.
fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| {
            range
                .split(';')
                .next()
                .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/event-stream"))
        })
}

/// The highest `seq` a cursor may name: the log's numbers are 64-bit signed in
/// the database.
pub(crate) const MAX_SEQ: u64 = i64::MAX as u64;

/// `?after=`, 0 when absent.
fn cursor(after: Option<u64>) -> Result<u64, ApiError> {
    match after {
        None => Ok(0),
        Some(seq) if seq <= MAX_SEQ => Ok(seq),
        Some(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidQueryParameter,
            "after must be an event's seq (at most 2^63 - 1)",
        )),
    }
}

/// The `Last-Event-ID` a reconnecting `EventSource` sends; empty counts as
/// absent (the SSE specification's reset).
pub(crate) fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    // Spaces and tabs around a header value are not part of it (RFC 9110).
    let text = value
        .to_str()
        .ok()
        .map(|text| text.trim_matches([' ', '\t']));
    if text == Some("") {
        return Ok(None);
    }
    // A number as the server writes one in an `id:` line: digits without
    // leading zeros (`u64`'s parser would also take `+7` and `007`).
    text.filter(|text| {
        text.bytes().all(|b| b.is_ascii_digit()) && (*text == "0" || !text.starts_with('0'))
    })
    .and_then(|text| text.parse::<u64>().ok())
    .filter(|seq| *seq <= MAX_SEQ)
    .map(Some)
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "Last-Event-ID must be an event's seq",
        )
    })
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

    #[test]
    fn a_cursor_is_a_seq_up_to_the_largest_stored() {
        let mut headers = HeaderMap::new();
        assert_eq!(last_event_id(&headers).unwrap(), None);
        for (value, seq) in [("", None), ("  ", None), ("7", Some(7)), (" 42 ", Some(42))] {
            headers.insert("last-event-id", HeaderValue::from_static(value));
            assert_eq!(last_event_id(&headers).unwrap(), seq, "{value:?}");
        }
        for bad in ["x", "-1", "+1", "007", "1.5", "9223372036854775808"] {
            headers.insert("last-event-id", HeaderValue::from_static(bad));
            assert_eq!(
                last_event_id(&headers).unwrap_err().code(),
                ErrorCode::BadRequest,
                "{bad:?}"
            );
        }
        assert_eq!(cursor(None).unwrap(), 0);
        assert_eq!(cursor(Some(MAX_SEQ)).unwrap(), MAX_SEQ);
        assert_eq!(
            cursor(Some(MAX_SEQ + 1)).unwrap_err().code(),
            ErrorCode::InvalidQueryParameter
        );
    }
}
