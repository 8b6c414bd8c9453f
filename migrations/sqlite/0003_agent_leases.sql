-- Which replica runs a session's agent: one holder at a time, until the lease
-- expires (a replica that dies loses it) or is released.
CREATE TABLE agent_leases (
    session_id BLOB    PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

-- Queued and running prompts, for finding work no replica is doing.
CREATE INDEX prompts_open_by_session ON prompts (session_id) WHERE status IN ('queued', 'running');
