-- Webhooks: endpoints of a workspace, a delivery cursor per endpoint and session
-- (every event up to `delivered_seq` is done for the endpoint), the deliveries
-- attempted, and a lease so that one replica at a time delivers to an endpoint.
-- (SQLite's api_keys.scopes has no list of scopes to widen.)

CREATE TABLE webhook_endpoints (
    id                         BLOB PRIMARY KEY,
    workspace_id               TEXT    NOT NULL,
    url                        TEXT    NOT NULL,
    -- space-separated event selectors, e.g. 'prompt.failed session.closed'
    event_types                TEXT    NOT NULL CHECK (event_types <> ''),
    session_id                 BLOB    REFERENCES sessions (id) ON DELETE CASCADE,
    description                TEXT,
    format                     TEXT    NOT NULL CHECK (format IN ('standard', 'slack')),
    -- the signing secrets (`whsec_...`): usable to sign, so kept as they are
    secret                     TEXT    NOT NULL,
    previous_secret            TEXT,
    previous_secret_expires_at INTEGER,
    disabled_at                INTEGER,
    disabled_reason            TEXT    CHECK (disabled_reason IN ('manual', 'failing')),
    since                      INTEGER NOT NULL,
    created_at                 INTEGER NOT NULL,
    updated_at                 INTEGER NOT NULL,
    version                    INTEGER NOT NULL DEFAULT 0,
    CHECK ((previous_secret IS NULL) = (previous_secret_expires_at IS NULL)),
    CHECK ((disabled_at IS NULL) = (disabled_reason IS NULL))
) STRICT;
CREATE INDEX webhook_endpoints_by_workspace ON webhook_endpoints (workspace_id, id DESC);

CREATE TABLE webhook_cursors (
    webhook_id    BLOB    NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    session_id    BLOB    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    delivered_seq INTEGER NOT NULL CHECK (delivered_seq >= 0),
    -- when the session's pending delivery is due again (NULL: at once)
    retry_at      INTEGER,
    PRIMARY KEY (webhook_id, session_id)
) STRICT;

CREATE TABLE webhook_deliveries (
    id              BLOB PRIMARY KEY,
    webhook_id      BLOB    NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    session_id      BLOB    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL CHECK (seq > 0),
    event_type      TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts        INTEGER NOT NULL CHECK (attempts >= 0),
    created_at      INTEGER NOT NULL,
    last_attempt_at INTEGER,
    next_attempt_at INTEGER,
    response_status INTEGER CHECK (response_status BETWEEN 100 AND 599),
    error           TEXT,
    latency_ms      INTEGER CHECK (latency_ms >= 0),
    UNIQUE (webhook_id, session_id, seq)
) STRICT;
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id DESC);
CREATE INDEX webhook_deliveries_by_webhook_status ON webhook_deliveries (webhook_id, status, id DESC);

-- Which replica delivers to an endpoint: one holder at a time, until the lease
-- expires (a replica that dies loses it) or is released.
CREATE TABLE webhook_leases (
    webhook_id BLOB    PRIMARY KEY REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
