-- One-use tickets that let a browser EventSource (which cannot send headers) open
-- a session's event stream: valid 60 seconds, stored only as hashes.
CREATE TABLE stream_tickets (
    token_hash     BYTEA       PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    session_id     UUID        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    participant_id UUID        REFERENCES participants (id) ON DELETE CASCADE,
    api_key_id     UUID        REFERENCES api_keys (id) ON DELETE CASCADE,
    expires_at     TIMESTAMPTZ NOT NULL,
    used_at        TIMESTAMPTZ,
    CHECK ((participant_id IS NULL) <> (api_key_id IS NULL))
);
CREATE INDEX stream_tickets_by_expiry ON stream_tickets (expires_at);
