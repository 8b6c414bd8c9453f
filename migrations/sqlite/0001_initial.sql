-- Tandem's schema on SQLite (mirrors migrations/postgres). Ids are 16-byte BLOBs
-- (UUIDv7, so they sort by creation), times are INTEGER microseconds since the Unix
-- epoch (exact, comparable, and cheap to add durations to), JSON is TEXT. Every enum column has a CHECK with its values; every
-- list query has a keyset index; events are keyed (session_id, seq).

CREATE TABLE api_keys (
    id           BLOB PRIMARY KEY,
    workspace_id TEXT        NOT NULL,
    name         TEXT        NOT NULL,
    -- space-separated scopes, e.g. 'sessions:read sessions:write'
    scopes       TEXT        NOT NULL CHECK (scopes <> ''),
    token_hash   BLOB        NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at   INTEGER     NOT NULL,
    revoked_at   INTEGER    
) STRICT;
CREATE INDEX api_keys_by_workspace ON api_keys (workspace_id, id DESC);

CREATE TABLE sessions (
    id                BLOB PRIMARY KEY,
    workspace_id      TEXT        NOT NULL,
    title             TEXT        NOT NULL,
    host_user_id      TEXT,
    agent_profile     TEXT        NOT NULL,
    agent_session_id  TEXT,
    mode              TEXT        NOT NULL CHECK (mode IN ('view_only', 'comment_only', 'prompt_with_approval', 'prompt_direct')),
    permission_policy TEXT        NOT NULL CHECK (permission_policy IN ('ask_host', 'allow_all', 'reject_all')),
    status            TEXT        NOT NULL CHECK (status IN ('active', 'closed', 'expired', 'terminated')),
    close_reason      TEXT        CHECK (close_reason IN ('closed_by_host', 'expired', 'idle_timeout', 'terminated')),
    closed_at         INTEGER    ,
    summary           TEXT,
    created_at        INTEGER     NOT NULL,
    expires_at        INTEGER     NOT NULL,
    idle_timeout_secs INTEGER     NOT NULL CHECK (idle_timeout_secs > 0),
    last_activity_at  INTEGER     NOT NULL,
    last_seq          INTEGER      NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    version           INTEGER     NOT NULL DEFAULT 0,
    CHECK ((status = 'active') = (close_reason IS NULL)),
    CHECK ((status = 'active') = (closed_at IS NULL))
) STRICT;
CREATE INDEX sessions_by_workspace ON sessions (workspace_id, id DESC);
CREATE INDEX sessions_by_workspace_status ON sessions (workspace_id, status, id DESC);
CREATE INDEX sessions_active_by_expiry ON sessions (expires_at) WHERE status = 'active';

CREATE TABLE participants (
    id           BLOB PRIMARY KEY,
    session_id   BLOB        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    user_id      TEXT,
    display_name TEXT        NOT NULL,
    role         TEXT        NOT NULL CHECK (role IN ('host', 'collaborator', 'viewer')),
    token_hash   BLOB        NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    joined_at    INTEGER     NOT NULL,
    left_at      INTEGER    ,
    removed_by   BLOB        REFERENCES participants (id),
    version      INTEGER     NOT NULL DEFAULT 0,
    CHECK (removed_by IS NULL OR left_at IS NOT NULL)
) STRICT;
CREATE INDEX participants_by_session ON participants (session_id, id);
-- A session has exactly one host: the creator.
CREATE UNIQUE INDEX participants_one_host ON participants (session_id) WHERE role = 'host';

CREATE TABLE invites (
    id         BLOB PRIMARY KEY,
    session_id BLOB        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    role       TEXT        NOT NULL CHECK (role IN ('collaborator', 'viewer')),
    max_uses   INTEGER     CHECK (max_uses > 0),
    uses       INTEGER     NOT NULL DEFAULT 0 CHECK (uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)),
    token_hash BLOB        NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at INTEGER     NOT NULL,
    expires_at INTEGER    ,
    revoked_at INTEGER    ,
    version    INTEGER     NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX invites_by_session ON invites (session_id, id);

CREATE TABLE comments (
    id                    BLOB PRIMARY KEY,
    session_id            BLOB        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    author_participant_id BLOB        NOT NULL REFERENCES participants (id),
    text                  TEXT        NOT NULL,
    created_at            INTEGER     NOT NULL
) STRICT;
CREATE INDEX comments_by_session ON comments (session_id, id);

CREATE TABLE prompts (
    id                    BLOB PRIMARY KEY,
    session_id            BLOB        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    author_participant_id BLOB        NOT NULL REFERENCES participants (id),
    text                  TEXT        NOT NULL,
    status                TEXT        NOT NULL CHECK (status IN ('pending_approval', 'queued', 'running', 'completed', 'failed', 'cancelled', 'rejected', 'withdrawn')),
    created_at            INTEGER     NOT NULL,
    queued_at             INTEGER    ,
    resolved_at           INTEGER    ,
    resolved_by           BLOB        REFERENCES participants (id),
    started_at            INTEGER    ,
    finished_at           INTEGER    ,
    stop_reason           TEXT        CHECK (stop_reason IN ('end_turn', 'max_tokens', 'max_turn_requests', 'refusal', 'cancelled')),
    error                 TEXT,
    retry_of              BLOB        REFERENCES prompts (id),
    version               INTEGER     NOT NULL DEFAULT 0,
    CHECK (status <> 'queued' OR queued_at IS NOT NULL),
    CHECK (status <> 'running' OR started_at IS NOT NULL)
) STRICT;
CREATE INDEX prompts_by_session ON prompts (session_id, id);
CREATE INDEX prompts_by_session_status ON prompts (session_id, status, id);
CREATE INDEX prompts_queue ON prompts (session_id, queued_at, id) WHERE status = 'queued';
CREATE INDEX prompts_by_status ON prompts (status, id);

CREATE TABLE permission_requests (
    id          BLOB PRIMARY KEY,
    session_id  BLOB        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    prompt_id   BLOB        NOT NULL REFERENCES prompts (id),
    tool_call   TEXT        NOT NULL,
    options     TEXT        NOT NULL,
    created_at  INTEGER     NOT NULL,
    deadline    INTEGER     NOT NULL,
    outcome     TEXT ,
    cause       TEXT        CHECK (cause IN ('host', 'policy', 'timeout', 'prompt_ended')),
    resolved_by BLOB        REFERENCES participants (id),
    resolved_at INTEGER    ,
    version     INTEGER     NOT NULL DEFAULT 0,
    CHECK ((outcome IS NULL) = (cause IS NULL) AND (outcome IS NULL) = (resolved_at IS NULL))
) STRICT;
CREATE INDEX permission_requests_open ON permission_requests (prompt_id, id) WHERE resolved_at IS NULL;

CREATE TABLE events (
    session_id BLOB        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq        INTEGER      NOT NULL CHECK (seq > 0),
    type       TEXT        NOT NULL CHECK (type IN (
        'session.created', 'session.updated', 'session.closed',
        'participant.joined', 'participant.left', 'participant.updated', 'participant.removed',
        'comment.posted',
        'prompt.submitted', 'prompt.edited', 'prompt.approved', 'prompt.rejected', 'prompt.withdrawn',
        'prompt.started', 'agent.output', 'agent.permission_requested', 'agent.permission_resolved',
        'prompt.completed', 'prompt.failed', 'prompt.cancelled')),
    actor_kind TEXT        NOT NULL CHECK (actor_kind IN ('participant', 'api_key', 'agent', 'system')),
    actor_id   BLOB,
    data       TEXT        NOT NULL,
    created_at INTEGER     NOT NULL,
    PRIMARY KEY (session_id, seq),
    CHECK ((actor_kind IN ('participant', 'api_key')) = (actor_id IS NOT NULL))
) STRICT;
