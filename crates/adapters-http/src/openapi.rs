//! The OpenAPI 3.1 document: the handlers' annotations, collected by the
//! utoipa-axum router that also serves them, plus shared problem responses and
//! the bearer security scheme.

use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi, ToResponse};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

use std::collections::{BTreeMap, BTreeSet};

use tandem_domain::{AgentProfileName, TextLimits};
use utoipa::openapi::schema::Schema;

use crate::dto::rules;
use crate::error::{ErrorCode, FieldError, Problem};
use crate::routes::events::MAX_SEQ;
use crate::routes::{
    agent, api_keys, comments, events, identity, invites, ops, participants, permissions, prompts,
    sessions, webhooks,
};
use crate::state::AppState;

pub(crate) use responses::{
    BadRequest, Conflict, Forbidden, Gone, HeadersTooLarge, Internal, NotAcceptable, NotFound,
    PayloadTooLarge, RequestTimeout, TooManyRequests, Unauthorized, Unavailable, Unprocessable,
    UnsupportedMediaType, UriTooLong,
};

/// The problem responses operations share, as named response components.
mod responses {
    #![expect(
        dead_code,
        reason = "these types only describe responses for the OpenAPI document"
    )]

    use utoipa::ToResponse;

    use crate::error::Problem;

    /// Invalid JSON (`MALFORMED_JSON`), or a path or query parameter of the wrong
    /// form (`INVALID_PATH_PARAMETER`, `INVALID_QUERY_PARAMETER`).
    #[derive(Debug, ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub(crate) struct BadRequest(Problem);

    /// No credential, or one that matches nothing (`UNAUTHENTICATED`), or a
    /// participant who left or was removed (`PARTICIPANT_GONE`).
    #[derive(Debug, ToResponse)]
    #[response(
        content_type = "application/problem+json",
        headers(("WWW-Authenticate" = String, description = "Always `Bearer`."))
    )]
    pub(crate) struct Unauthorized(Problem);

    /// The credential is valid but may not do this (`INSUFFICIENT_SCOPE`,
    /// `HOST_ONLY`, `PROMPT_NOT_ALLOWED`, ...).
    #[derive(Debug, ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub(crate) struct Forbidden(Problem);

    /// No such record, or none this caller may see (`SESSION_NOT_FOUND`, ...).
    #[derive(Debug, ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub(crate) struct NotFound(Problem);

    /// The client does not accept any media type this endpoint answers with
    /// (`NOT_ACCEPTABLE`).
    #[derive(Debug, ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub(crate) struct NotAcceptable(Problem);

    /// The record's state does not allow this now (`SESSION_INACTIVE`,
    /// `PROMPT_ALREADY_RESOLVED`, `EXPIRY_BEYOND_MAX`, `UNKNOWN_AGENT_MODE`,
    /// `UNKNOWN_PERMISSION_OPTION`, `CONCURRENT_MODIFICATION`, ...).
    #[derive(Debug, ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub(crate) struct Conflict(Problem);

    /// The invite no longer works (`INVITE_REVOKED`, `INVITE_EXHAUSTED`,
    /// `INVITE_EXPIRED`).
    #[derive(Debug, ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub(crate) struct Gone(Problem);

    /// The body is larger than the server accepts (`PAYLOAD_TOO_LARGE`).
    #[derive(Debug, ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub(crate) struct PayloadTooLarge(Problem);

    /// The body is not declared as `application/json` (`UNSUPPORTED_MEDIA_TYPE`).
    #[derive(Debug, ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub(crate) struct UnsupportedMediaType(Problem);

    /// The body does not fit the request's schema or rules (`VALIDATION_FAILED`
    /// with `errors`, `UNKNOWN_AGENT_PROFILE`, `WEBHOOK_URL_REFUSED`).
    #[derive(Debug, ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub(crate) struct Unprocessable(Problem);

    /// The server failed (`INTERNAL`); the body says nothing about why.
    #[derive(Debug, ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub(crate) struct Internal(Problem);

    /// The request's head or body did not arrive in time (`REQUEST_TIMEOUT`).
    #[derive(Debug, ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub(crate) struct RequestTimeout(Problem);

    /// The request's path and query are longer than the server reads
    /// (`URI_TOO_LONG`; 8 KiB by default).
    #[derive(Debug, ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub(crate) struct UriTooLong(Problem);

    /// The request's header lines are larger, or more, than the server reads
    /// (`HEADERS_TOO_LARGE`; 16 KiB and 100 headers by default).
    #[derive(Debug, ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub(crate) struct HeadersTooLarge(Problem);

    /// The server cannot serve yet (`NOT_READY`).
    #[derive(Debug, ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub(crate) struct Unavailable(Problem);

    /// The caller sent more writes than the server allows (`RATE_LIMITED`): each
    /// API key and participant, and each client address for writes without a
    /// credential, has a budget per minute with a burst.
    #[derive(Debug, ToResponse)]
    #[response(
        content_type = "application/problem+json",
        headers(("Retry-After" = u64, description = "Whole seconds to wait before writing again."))
    )]
    pub(crate) struct TooManyRequests(Problem);
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tandem",
        description = "Share a live AI coding-agent session: teammates join through an invite, \
watch the agent work, comment, and send prompts of their own.\n\n\
Every request but `POST /v1/join` and the probes carries `Authorization: Bearer <token>`: \
an API key or a participant token. Every error is an RFC 9457 `application/problem+json` \
document with a stable `code`."
    ),
    tags(
        (name = "sessions", description = "Shared agent sessions."),
        (name = "participants", description = "Joining, leaving, roles and removal."),
        (name = "invites", description = "Invite links of a session."),
        (name = "comments", description = "Comments of participants."),
        (name = "prompts", description = "Prompts to the agent and their lifecycle."),
        (name = "permissions", description = "The agent's requests to run tools."),
        (name = "events", description = "A session's event log."),
        (name = "api-keys", description = "API keys of a workspace."),
        (name = "identity", description = "Who a credential belongs to, and the agent profiles a session may run."),
        (name = "webhooks", description = "Webhooks: signed notifications of a workspace's session events, delivered at least once."),
        (name = "operations", description = "Probes."),
    ),
    components(
        schemas(Problem, FieldError, ErrorCode),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            NotAcceptable,
            Conflict,
            Gone,
            PayloadTooLarge,
            UnsupportedMediaType,
            Unprocessable,
            Internal,
            Unavailable,
            TooManyRequests,
            RequestTimeout,
            UriTooLong,
            HeadersTooLarge
        )
    ),
    modifiers(&Settings)
)]
struct ApiDoc;

/// What the derive cannot say: the bearer scheme and the product's version.
struct Settings;

impl Modify for Settings {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        env!("CARGO_PKG_VERSION").clone_into(&mut openapi.info.version);
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`tdm_key_...`) or a participant token (`tdm_pt_...`).",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every API route, registered together with its OpenAPI operation so that the
/// two cannot drift apart. The document states the deployment's text limits
/// and, when given, its agent profiles.
pub(crate) fn api_router(
    limits: &TextLimits,
    profiles: Option<&BTreeSet<AgentProfileName>>,
) -> OpenApiRouter<AppState> {
    let mut router = routes();
    let document = router.get_openapi_mut();
    writes_may_be_rate_limited(document);
    requests_may_be_refused_at_the_door(document);
    bodies_may_be_left_out(document);
    link_created_ids(document);
    link_invites_to_joining(document);
    let missing = rules::apply(document, limits, profiles);
    debug_assert!(
        missing.is_empty(),
        "request rules without a field: {missing:?}"
    );
    seq_headers_up_to_the_largest_seq(document);
    router
}

/// The `Last-Event-ID` header's pattern: a `seq` up to the largest one stored
/// (2^63 - 1), which `[0-9]{0,19}` would overshoot.
fn seq_headers_up_to_the_largest_seq(openapi: &mut utoipa::openapi::OpenApi) {
    let pattern = rules::seq_header_pattern(MAX_SEQ);
    let parameters = openapi
        .paths
        .paths
        .values_mut()
        .filter_map(|item| item.get.as_mut())
        .filter_map(|operation| operation.parameters.as_mut())
        .flatten()
        .filter_map(|parameter| match parameter {
            RefOr::T(parameter) => Some(parameter),
            RefOr::Ref(_) => None,
        })
        .filter(|parameter| parameter.name.eq_ignore_ascii_case("last-event-id"));
    for parameter in parameters {
        if let Some(RefOr::T(Schema::Object(schema))) = parameter.schema.as_mut() {
            schema.pattern = Some(pattern.clone());
        }
    }
}

/// The operations whose every body field is optional: an empty body (no
/// body at all) is the same as `{}`. Their body stays a JSON object when sent.
const OPTIONAL_BODIES: [&str; 4] = [
    "create_session",
    "update_session",
    "close_session",
    "create_invite",
];

/// Marks the bodies of `OPTIONAL_BODIES` as not required (the derive marks
/// every body it knows as required, and `Option<..>` would make it nullable).
fn bodies_may_be_left_out(openapi: &mut utoipa::openapi::OpenApi) {
    for item in openapi.paths.paths.values_mut() {
        let operations = [&mut item.post, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            let optional = operation
                .operation_id
                .as_deref()
                .is_some_and(|id| OPTIONAL_BODIES.contains(&id));
            if let (true, Some(RefOr::T(body))) = (optional, operation.request_body.as_mut()) {
                body.required = Some(utoipa::openapi::Required::False);
            }
        }
    }
}

/// Where an id the answer of an operation creates goes next: `(operation,
/// status, [(operation that uses it, [(its path parameter, runtime expression)])])`.
/// Stateful clients and fuzzers follow these links to reach the operations on
/// a real session, prompt, invite, participant, API key or webhook.
type Links = &'static [(
    &'static str,
    &'static str,
    &'static [(&'static str, &'static [(&'static str, &'static str)])],
)];

/// The `id` of a session created or joined, for every operation on it.
const SESSION_OPERATIONS: [&str; 14] = [
    "get_session",
    "update_session",
    "close_session",
    "terminate_session",
    "set_agent_mode",
    "list_participants",
    "list_invites",
    "create_invite",
    "list_comments",
    "post_comment",
    "list_prompts",
    "submit_prompt",
    "list_events",
    "create_stream_ticket",
];

/// The operations on one prompt.
const PROMPT_OPERATIONS: [&str; 8] = [
    "get_prompt",
    "edit_prompt",
    "approve_prompt",
    "reject_prompt",
    "withdraw_prompt",
    "cancel_prompt",
    "retry_prompt",
    "list_open_permissions",
];

const PROMPT_IDS: &[(&str, &str)] = &[("id", "$request.path.id"), ("pid", "$response.body#/id")];

const LINKS: Links = &[
    (
        "list_open_permissions",
        "200",
        &[(
            "answer_permission",
            &[
                ("id", "$request.path.id"),
                ("rid", "$response.body#/permissions/0/id"),
            ],
        )],
    ),
    (
        "create_invite",
        "201",
        &[(
            "revoke_invite",
            &[
                ("id", "$request.path.id"),
                ("iid", "$response.body#/invite/id"),
            ],
        )],
    ),
    (
        "join_session",
        "201",
        &[
            ("leave_session", &[("id", "$response.body#/session/id")]),
            (
                "update_participant",
                &[
                    ("id", "$response.body#/session/id"),
                    ("pid", "$response.body#/participant/id"),
                ],
            ),
            (
                "remove_participant",
                &[
                    ("id", "$response.body#/session/id"),
                    ("pid", "$response.body#/participant/id"),
                ],
            ),
        ],
    ),
    (
        "create_api_key",
        "201",
        &[("revoke_api_key", &[("kid", "$response.body#/apiKey/id")])],
    ),
    (
        "create_webhook",
        "201",
        &[
            ("get_webhook", &[("wid", "$response.body#/webhook/id")]),
            ("update_webhook", &[("wid", "$response.body#/webhook/id")]),
            ("delete_webhook", &[("wid", "$response.body#/webhook/id")]),
            (
                "rotate_webhook_secret",
                &[("wid", "$response.body#/webhook/id")],
            ),
            (
                "list_webhook_deliveries",
                &[("wid", "$response.body#/webhook/id")],
            ),
        ],
    ),
];

/// The operations an answer links to, each with its path parameters and
/// their runtime expressions.
type Targets = Vec<(&'static str, Vec<(&'static str, &'static str)>)>;

/// Adds OpenAPI `links` from the operations that create things to those that
/// use their ids.
fn link_created_ids(openapi: &mut utoipa::openapi::OpenApi) {
    let session_links: Targets = SESSION_OPERATIONS
        .iter()
        .map(|operation| (*operation, vec![("id", "$response.body#/session/id")]))
        .collect();
    let mut created_links = session_links.clone();
    created_links.push((
        "revoke_invite",
        vec![
            ("id", "$response.body#/session/id"),
            ("iid", "$response.body#/invite/invite/id"),
        ],
    ));
    let prompt_links: Targets = PROMPT_OPERATIONS
        .iter()
        .map(|operation| (*operation, PROMPT_IDS.to_vec()))
        .collect();
    let mut table: Vec<(&str, &str, Targets)> = vec![
        ("create_session", "201", created_links),
        ("submit_prompt", "201", prompt_links.clone()),
        ("retry_prompt", "201", prompt_links),
    ];
    for (operation, status, targets) in LINKS {
        table.push((
            operation,
            status,
            targets
                .iter()
                .map(|(target, parameters)| (*target, parameters.to_vec()))
                .collect(),
        ));
    }
    // Joining links to the session's operations as creating it does.
    table.push(("join_session", "201", session_links));
    for operation in operations_mut(openapi) {
        let Some(id) = operation.operation_id.clone() else {
            continue;
        };
        for (_, status, targets) in table.iter().filter(|(source, ..)| *source == id) {
            let Some(RefOr::T(response)) = operation.responses.responses.get_mut(*status) else {
                continue;
            };
            for (target, parameters) in targets {
                let mut link = LinkBuilder::new()
                    .operation_id(*target)
                    .description(format!("`{target}` with the id this answer carries."));
                for (name, expression) in parameters {
                    link = link.parameter(*name, *expression);
                }
                response
                    .links
                    .insert(link_name(target), RefOr::T(link.build()));
            }
        }
    }
}

/// Every operation of the document, whatever its method.
fn operations_mut(
    openapi: &mut utoipa::openapi::OpenApi,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    openapi.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.post,
            &mut item.patch,
            &mut item.put,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
    })
}

/// Links from the answers that carry an invite's token to `join_session`, with
/// the token in the request body: the joined participant's id then leads on to
/// the operations on participants.
fn link_invites_to_joining(openapi: &mut utoipa::openapi::OpenApi) {
    let sources = [
        ("create_session", "$response.body#/invite/token"),
        ("create_invite", "$response.body#/token"),
    ];
    for item in openapi.paths.paths.values_mut() {
        let Some(operation) = item.post.as_mut() else {
            continue;
        };
        let token = sources
            .iter()
            .find(|(source, _)| operation.operation_id.as_deref() == Some(*source))
            .map(|(_, token)| *token);
        let response = operation.responses.responses.get_mut("201");
        if let (Some(token), Some(RefOr::T(response))) = (token, response) {
            let link = LinkBuilder::new()
                .operation_id("join_session")
                .description("`join_session` with the invite token this answer carries.")
                .request_body(Some(serde_json::json!({ "inviteToken": token })))
                .build();
            response
                .links
                .insert(link_name("join_session"), RefOr::T(link));
        }
    }
}

/// A link's name: the target operation in upper camel case (`GetSession`).
fn link_name(operation: &str) -> String {
    operation
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect::<String>()
            })
        })
        .collect()
}

/// Adds the answers the connection layer gives before any route sees the
/// request (`serve`): 400 (a head it cannot read), 408, 414 and 431, to every
/// operation.
fn requests_may_be_refused_at_the_door(openapi: &mut utoipa::openapi::OpenApi) {
    let answers = [
        ("408", <RequestTimeout as ToResponse>::response().0),
        ("414", <UriTooLong as ToResponse>::response().0),
        ("431", <HeadersTooLarge as ToResponse>::response().0),
    ];
    let (bad_request, _) = <BadRequest as ToResponse>::response();
    for operation in operations_mut(openapi) {
        operation
            .responses
            .responses
            .entry("400".to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(bad_request)));
        for (status, name) in answers {
            operation
                .responses
                .responses
                .insert(status.to_owned(), RefOr::Ref(Ref::from_response_name(name)));
        }
    }
}

/// Adds the 429 and 413 answers to every write operation (`POST`, `PATCH`,
/// `PUT`, `DELETE`): the rate limit and the body size limit apply to all of
/// them alike, whether or not they read a body.
fn writes_may_be_rate_limited(openapi: &mut utoipa::openapi::OpenApi) {
    let (name, _) = <TooManyRequests as ToResponse>::response();
    let (too_large, _) = <PayloadTooLarge as ToResponse>::response();
    for item in openapi.paths.paths.values_mut() {
        let writes = [
            &mut item.post,
            &mut item.patch,
            &mut item.put,
            &mut item.delete,
        ];
        for operation in writes.into_iter().flatten() {
            operation
                .responses
                .responses
                .insert("429".to_owned(), RefOr::Ref(Ref::from_response_name(name)));
            operation
                .responses
                .responses
                .entry("413".to_owned())
                .or_insert_with(|| RefOr::Ref(Ref::from_response_name(too_large)));
        }
    }
}

fn routes() -> OpenApiRouter<AppState> {
    let routes: Vec<UtoipaMethodRouter<AppState>> = vec![
        routes!(ops::healthz),
        routes!(ops::readyz),
        routes!(sessions::create_session, sessions::list_sessions),
        routes!(
            sessions::get_session,
            sessions::update_session,
            sessions::terminate_session
        ),
        routes!(sessions::close_session),
        routes!(agent::set_agent_mode),
        routes!(participants::join_session),
        routes!(participants::leave_session),
        routes!(participants::list_participants),
        routes!(
            participants::update_participant,
            participants::remove_participant
        ),
        routes!(invites::list_invites, invites::create_invite),
        routes!(invites::revoke_invite),
        routes!(invites::preview_invite),
        routes!(identity::whoami),
        routes!(identity::list_agent_profiles),
        routes!(comments::list_comments, comments::post_comment),
        routes!(prompts::list_prompts, prompts::submit_prompt),
        routes!(prompts::get_prompt, prompts::edit_prompt),
        routes!(prompts::approve_prompt),
        routes!(prompts::reject_prompt),
        routes!(prompts::withdraw_prompt),
        routes!(prompts::cancel_prompt),
        routes!(prompts::retry_prompt),
        routes!(permissions::answer_permission),
        routes!(permissions::list_open_permissions),
        routes!(events::list_events),
        routes!(events::create_stream_ticket),
        routes!(api_keys::create_api_key, api_keys::list_api_keys),
        routes!(api_keys::revoke_api_key),
        routes!(webhooks::create_webhook, webhooks::list_webhooks),
        routes!(
            webhooks::get_webhook,
            webhooks::update_webhook,
            webhooks::delete_webhook
        ),
        routes!(webhooks::rotate_webhook_secret),
        routes!(webhooks::list_webhook_deliveries),
        routes!(webhooks::retry_webhook_delivery),
    ];
    let document = ApiDoc::openapi();
    if cfg!(debug_assertions) {
        one_schema_per_name(&document, &routes);
    }
    routes
        .into_iter()
        .fold(OpenApiRouter::with_openapi(document), OpenApiRouter::routes)
}

/// Panics if two routes describe different types under one schema name: the
/// document keeps one schema per name, so one of them would be published for
/// the other (an HTTP response type named like an event's payload type, say).
/// Descriptions may differ; shapes may not. Checked in debug builds, which every
/// test runs.
fn one_schema_per_name(
    document: &utoipa::openapi::OpenApi,
    routes: &[UtoipaMethodRouter<AppState>],
) {
    let mut seen: BTreeMap<&str, serde_json::Value> = BTreeMap::new();
    let declared = document
        .components
        .iter()
        .flat_map(|components| &components.schemas);
    let from_routes = routes
        .iter()
        .flat_map(|(schemas, ..)| schemas)
        .map(|(name, schema)| (name, schema));
    for (name, schema) in declared.chain(from_routes) {
        let shape = shape(serde_json::to_value(schema).expect("a schema is JSON"));
        if let Some(earlier) = seen.insert(name, shape.clone()) {
            assert_eq!(earlier, shape, "two different schemas are named {name}");
        }
    }
}

/// A schema without its descriptions.
fn shape(mut schema: serde_json::Value) -> serde_json::Value {
    fn strip(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                map.remove("description");
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            serde_json::Value::Null
            | serde_json::Value::Bool(_)
            | serde_json::Value::Number(_)
            | serde_json::Value::String(_) => {}
        }
    }
    strip(&mut schema);
    schema
}
