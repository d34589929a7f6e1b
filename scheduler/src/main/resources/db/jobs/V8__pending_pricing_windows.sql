-- ADR 22: the pricing windows a scheduler has sampled and billing has not stored yet: the closed ones
-- billing has not taken and the one under way, as it stood at the last save (every few seconds). A
-- scheduler that starts (after a crash, or taking over in cluster mode) sends those the schedulers
-- before it saved, so that the seconds they sampled are paid by the bootstrap fund (once: ADR 21).
CREATE TABLE pricing_window_pending (
  scheduler_id VARCHAR(64)      PRIMARY KEY,
  saved_at_ms  BIGINT           NOT NULL,
  windows      VARCHAR(1000000) NOT NULL
);
