-- Closing epochs takes this row first, so that two closers of one ledger (two instances, or a close
-- racing another) close each epoch once: the second waits, then finds the epochs closed (ADR 13).
CREATE TABLE epoch_close_lock (id INT PRIMARY KEY);
INSERT INTO epoch_close_lock (id) VALUES (1);
