-- A charge an operator confirmed with the gateway (`payflow review resolve --action succeed
-- --gateway-ref REF`, issue 8) is recorded like one a callback or status query told us about,
-- so the audit's gateway checks and reconciliation hold it against the statement.
ALTER TABLE gateway_charges DROP CONSTRAINT gateway_charges_source_check;
ALTER TABLE gateway_charges ADD CONSTRAINT gateway_charges_source_check
    CHECK (source IN ('callback', 'sync', 'operator'));
