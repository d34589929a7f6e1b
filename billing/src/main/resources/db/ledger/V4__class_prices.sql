-- GPU-class prices over time (bme-spec 16.2): each row is a price in force from from_ms on.
CREATE TABLE class_price (
  gpu_class            VARCHAR(32) NOT NULL,
  from_ms              BIGINT      NOT NULL,
  uact_per_gpu_second  VARCHAR(64) NOT NULL,
  uact_per_gpu_hour    BIGINT      NOT NULL,
  utilization          VARCHAR(64),
  PRIMARY KEY (gpu_class, from_ms)
);
