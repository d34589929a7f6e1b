-- The node labels every job of a tenant asks for (PATCH /api/v1/tenants/{id} "nodeLabels", ADR 29),
-- as a JSON object; null: none, its jobs may run on any node (or on those they ask for).
ALTER TABLE tenant ADD COLUMN node_labels VARCHAR(2100);
