-- bme-spec 16.5, AKT-direct fallback: while the BME is halted (status >= HALT_CR) and the oracle is
-- healthy, a job of a tenant without enough ACT may be paid straight from the tenant's AKT deposit.
-- Such an escrow holds uakt (held_uakt, sized at the AKT price of admission, akt_price); its
-- amount_uact stays the quoted ceiling in uact. A settlement of it pays the provider paid_uakt.
ALTER TABLE escrow ADD COLUMN held_uakt BIGINT DEFAULT 0 NOT NULL;
ALTER TABLE escrow ADD COLUMN akt_price VARCHAR(48);
ALTER TABLE settlement ADD COLUMN paid_uakt BIGINT DEFAULT 0 NOT NULL;
