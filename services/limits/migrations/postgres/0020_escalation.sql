-- Escalation of steps left waiting (issue #22): each queue row carries when the chain's
-- waiting step is due to be escalated, so the sweep reads the few rows that are due instead
-- of every chain.
ALTER TABLE approval_tasks ADD COLUMN escalate_at TIMESTAMPTZ;
CREATE INDEX approval_tasks_escalation ON approval_tasks (escalate_at) WHERE escalate_at IS NOT NULL;
