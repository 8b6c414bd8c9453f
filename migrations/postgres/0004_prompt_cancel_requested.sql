-- `prompt.cancel_requested`: a cancel of a running prompt is written to the log, so
-- that the replica running the prompt's agent learns of it.
ALTER TABLE events DROP CONSTRAINT events_type_check;
ALTER TABLE events ADD CONSTRAINT events_type_check CHECK (type IN (
    'session.created', 'session.updated', 'session.closed',
    'participant.joined', 'participant.left', 'participant.updated', 'participant.removed',
    'comment.posted',
    'prompt.submitted', 'prompt.edited', 'prompt.approved', 'prompt.rejected', 'prompt.withdrawn',
    'prompt.started', 'prompt.cancel_requested',
    'agent.output', 'agent.permission_requested', 'agent.permission_resolved',
    'prompt.completed', 'prompt.failed', 'prompt.cancelled'));
