-- `prompt.cancel_requested`: a cancel of a running prompt is written to the log, so
-- that the task running the prompt's agent learns of it. SQLite cannot change a
-- CHECK constraint, so the table is rebuilt with the wider one.
CREATE TABLE events_new (
    session_id BLOB        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq        INTEGER      NOT NULL CHECK (seq > 0),
    type       TEXT        NOT NULL CHECK (type IN (
        'session.created', 'session.updated', 'session.closed',
        'participant.joined', 'participant.left', 'participant.updated', 'participant.removed',
        'comment.posted',
        'prompt.submitted', 'prompt.edited', 'prompt.approved', 'prompt.rejected', 'prompt.withdrawn',
        'prompt.started', 'prompt.cancel_requested',
        'agent.output', 'agent.permission_requested', 'agent.permission_resolved',
        'prompt.completed', 'prompt.failed', 'prompt.cancelled')),
    actor_kind TEXT        NOT NULL CHECK (actor_kind IN ('participant', 'api_key', 'agent', 'system')),
    actor_id   BLOB,
    data       TEXT        NOT NULL,
    created_at INTEGER     NOT NULL,
    PRIMARY KEY (session_id, seq),
    CHECK ((actor_kind IN ('participant', 'api_key')) = (actor_id IS NOT NULL))
) STRICT;
INSERT INTO events_new SELECT session_id, seq, type, actor_kind, actor_id, data, created_at FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
