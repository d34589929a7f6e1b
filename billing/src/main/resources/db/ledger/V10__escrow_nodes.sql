-- The nodes a job was placed on, written by the scheduler at placement: a receipt is settled only
-- when its node is one of them (a node cannot bill a job it was not given). Each node id is followed
-- by a newline, which no node id that signs receipts can contain. Escrows held before this version
-- keep NULL: nothing was recorded for them, and their receipts are settled as before.
ALTER TABLE escrow ADD COLUMN nodes VARCHAR(100000);
ALTER TABLE escrow ALTER COLUMN nodes SET DEFAULT '';
