-- Dead letters keep the original message exactly: header names and values as bytea
-- (jsonb refused a NUL byte and failed the whole batch that tried to store it).
ALTER TABLE dead_letters
    ADD COLUMN header_keys   bytea[] NOT NULL DEFAULT '{}',
    ADD COLUMN header_values bytea[] NOT NULL DEFAULT '{}';

UPDATE dead_letters d
SET header_keys = h.keys, header_values = h.vals
FROM (
    SELECT dead_letter_id,
           array_agg(convert_to(e->>0, 'UTF8') ORDER BY n) AS keys,
           array_agg(convert_to(e->>1, 'UTF8') ORDER BY n) AS vals
    FROM dead_letters, jsonb_array_elements(headers) WITH ORDINALITY AS t(e, n)
    GROUP BY dead_letter_id
) h
WHERE d.dead_letter_id = h.dead_letter_id;

ALTER TABLE dead_letters DROP COLUMN headers;
ALTER TABLE dead_letters
    ADD CONSTRAINT dead_letter_headers_pair
    CHECK (cardinality(header_keys) = cardinality(header_values));
