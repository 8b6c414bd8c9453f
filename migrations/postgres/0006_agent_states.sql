-- The session's agent: what a restart needs to resume it (its workspace, whether
-- it can load sessions; its agent session id is on `sessions`) and what it offers
-- participants (commands, modes, its own title). Written by the session's runner
-- and by the host's mode requests, under optimistic versioning.
CREATE TABLE agent_states (
    session_id        UUID        PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    load_session      BOOLEAN     NOT NULL,
    workspace_kind    TEXT        CHECK (workspace_kind IN ('shared', 'directory', 'worktree')),
    workspace_path    TEXT,
    workspace_branch  TEXT,
    workspace_cleanup TEXT        CHECK (workspace_cleanup IN ('removed', 'kept', 'failed')),
    commands          JSONB       NOT NULL,
    modes             JSONB       NOT NULL,
    current_mode      TEXT,
    requested_mode    TEXT,
    mode_requested_by UUID        REFERENCES participants (id),
    title             TEXT,
    version           INTEGER     NOT NULL DEFAULT 0,
    CHECK ((workspace_kind IS NULL) = (workspace_path IS NULL)),
    CHECK ((requested_mode IS NULL) = (mode_requested_by IS NULL))
);
-- Own workspaces not cleaned up yet, for finding ended sessions that still have one.
CREATE INDEX agent_states_awaiting_cleanup ON agent_states (session_id)
    WHERE workspace_cleanup IS NULL AND workspace_kind IN ('directory', 'worktree');

-- The agent's session-level events.
ALTER TABLE events DROP CONSTRAINT events_type_check;
ALTER TABLE events ADD CONSTRAINT events_type_check CHECK (type IN (
    'session.created', 'session.updated', 'session.closed',
    'participant.joined', 'participant.left', 'participant.updated', 'participant.removed',
    'comment.posted',
    'prompt.submitted', 'prompt.edited', 'prompt.approved', 'prompt.rejected', 'prompt.withdrawn',
    'prompt.started', 'prompt.cancel_requested',
    'agent.output', 'agent.permission_requested', 'agent.permission_resolved',
    'prompt.completed', 'prompt.failed', 'prompt.cancelled',
    'agent.started', 'agent.commands_updated', 'agent.mode_requested', 'agent.mode_changed',
    'agent.mode_change_failed', 'agent.title_changed'));
