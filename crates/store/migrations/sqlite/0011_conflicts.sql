-- Two-way fields both sides changed differently, held for an operator
-- (the field's conflict policy is `hold`, or `newest-wins` without
-- modification times). `resolution` ('source' or 'target') is the
-- operator's choice; the next run writes the winner and clears the row.
CREATE TABLE conflicts (
    profile_id    TEXT NOT NULL,
    source_id     TEXT NOT NULL,
    field         TEXT NOT NULL,
    target_id     TEXT NOT NULL,
    base_value    TEXT,
    source_value  TEXT,
    target_value  TEXT,
    reason        TEXT NOT NULL,
    resolution    TEXT,
    at            BIGINT NOT NULL,
    PRIMARY KEY (profile_id, source_id, field)
);
