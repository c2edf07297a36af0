-- Requests left waiting past the credit policy's approval expiry are withdrawn by the system
-- (issue #22): the sweep looks for the oldest waiting queue rows.
CREATE INDEX approval_tasks_requested ON approval_tasks (requested_at);
