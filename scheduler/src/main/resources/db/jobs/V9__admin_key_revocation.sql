-- Admin keys can be revoked (POST/GET/DELETE /api/v1/admin-keys): a revoked key no longer
-- authenticates, and stays recorded so that a start naming it (ANNEAL_ADMIN_KEY) is refused
-- instead of bringing it back.
ALTER TABLE admin_key ADD COLUMN revoked_at BIGINT;
