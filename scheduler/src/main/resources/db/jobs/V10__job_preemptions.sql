-- How often each job was preempted (at most 2 times, ADR 5): counted in the store, so that a scheduler
-- that starts again or takes over (ADR 19) goes on from the count instead of starting it at 0.
ALTER TABLE job ADD COLUMN preemptions INT DEFAULT 0 NOT NULL;
