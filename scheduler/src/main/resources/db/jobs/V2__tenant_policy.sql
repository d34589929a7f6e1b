-- Fair-share weight and hard GPU quota per tenant (NULL quota = no quota).
ALTER TABLE tenant ADD COLUMN weight DOUBLE PRECISION DEFAULT 1 NOT NULL;
ALTER TABLE tenant ADD COLUMN gpu_quota INT;
