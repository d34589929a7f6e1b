-- The bootstrap fund's windows (bme-spec 16.3, ADR 21): the span of time each one paid floors for.
-- A window pays only for the part of its span no earlier window covered, so two schedulers that both
-- closed a window across a takeover (the deposed one's last and the new one's first overlap) do not
-- pay the same seconds twice. end_ms is the window's end as the scheduler sent it; start_ms where
-- the window was paid from (its own start, or the end of the window before if later).
CREATE TABLE bootstrap_window (
  end_ms       BIGINT      PRIMARY KEY,
  start_ms     BIGINT      NOT NULL,
  asked_start_ms BIGINT    NOT NULL,
  utilization  VARCHAR(48) NOT NULL,
  providers    INT         NOT NULL,
  paid_uact    BIGINT      NOT NULL,
  fund_uact    BIGINT      NOT NULL
);
