-- Webhooks: endpoints of a workspace, a delivery cursor per endpoint and session
-- (every event up to `delivered_seq` is done for the endpoint), the deliveries
-- attempted, and a lease so that one replica at a time delivers to an endpoint.

ALTER TABLE api_keys DROP CONSTRAINT api_keys_scopes_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes_check CHECK (scopes ~
    '^(sessions:read|sessions:write|webhooks:read|webhooks:write|admin)( (sessions:read|sessions:write|webhooks:read|webhooks:write|admin))*$');

CREATE TABLE webhook_endpoints (
    id                         UUID PRIMARY KEY,
    workspace_id               TEXT        NOT NULL,
    url                        TEXT        NOT NULL,
    -- space-separated event selectors, e.g. 'prompt.failed session.closed'
    event_types                TEXT        NOT NULL CHECK (event_types <> ''),
    session_id                 UUID        REFERENCES sessions (id) ON DELETE CASCADE,
    description                TEXT,
    format                     TEXT        NOT NULL CHECK (format IN ('standard', 'slack')),
    -- the signing secrets (`whsec_...`): usable to sign, so kept as they are
    secret                     TEXT        NOT NULL,
    previous_secret            TEXT,
    previous_secret_expires_at TIMESTAMPTZ,
    disabled_at                TIMESTAMPTZ,
    disabled_reason            TEXT        CHECK (disabled_reason IN ('manual', 'failing')),
    since                      TIMESTAMPTZ NOT NULL,
    created_at                 TIMESTAMPTZ NOT NULL,
    updated_at                 TIMESTAMPTZ NOT NULL,
    version                    INTEGER     NOT NULL DEFAULT 0,
    CHECK ((previous_secret IS NULL) = (previous_secret_expires_at IS NULL)),
    CHECK ((disabled_at IS NULL) = (disabled_reason IS NULL))
);
CREATE INDEX webhook_endpoints_by_workspace ON webhook_endpoints (workspace_id, id DESC);

CREATE TABLE webhook_cursors (
    webhook_id    UUID        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    session_id    UUID        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    delivered_seq BIGINT      NOT NULL CHECK (delivered_seq >= 0),
    -- when the session's pending delivery is due again (NULL: at once)
    retry_at      TIMESTAMPTZ,
    PRIMARY KEY (webhook_id, session_id)
);

CREATE TABLE webhook_deliveries (
    id              UUID PRIMARY KEY,
    webhook_id      UUID        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    session_id      UUID        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq             BIGINT      NOT NULL CHECK (seq > 0),
    event_type      TEXT        NOT NULL,
    status          TEXT        NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts        INTEGER     NOT NULL CHECK (attempts >= 0),
    created_at      TIMESTAMPTZ NOT NULL,
    last_attempt_at TIMESTAMPTZ,
    next_attempt_at TIMESTAMPTZ,
    response_status INTEGER     CHECK (response_status BETWEEN 100 AND 599),
    error           TEXT,
    latency_ms      INTEGER     CHECK (latency_ms >= 0),
    UNIQUE (webhook_id, session_id, seq)
);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id DESC);
CREATE INDEX webhook_deliveries_by_webhook_status ON webhook_deliveries (webhook_id, status, id DESC);

-- Which replica delivers to an endpoint: one holder at a time, until the lease
-- expires (a replica that dies loses it) or is released.
CREATE TABLE webhook_leases (
    webhook_id UUID        PRIMARY KEY REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    holder     TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
