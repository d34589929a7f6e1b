-- A tenant's own bound on its queued jobs (PATCH /api/v1/tenants/{id} maxQueuedJobs, ADR 24); NULL: the
-- service's limits.maxQueuedJobsPerTenant.
ALTER TABLE tenant ADD COLUMN max_queued_jobs INT;
