-- Open escrows are few (queued and running jobs) among all escrows ever held: the supply view sums
-- them every tick and every metrics refresh, so they get an index instead of a full scan.
CREATE INDEX escrow_state ON escrow (state);
