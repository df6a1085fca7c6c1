-- Sync engine: links (id map with provenance), cursors, an append-only journal.

CREATE TABLE links (
    profile_id     TEXT NOT NULL,
    source_id      TEXT NOT NULL,
    target_id      TEXT NOT NULL,
    source_version TEXT,
    target_version TEXT,
    -- last field values written to (or matched in) the target, JSON object
    fields         TEXT NOT NULL,
    -- per-field provenance, JSON object: field -> {"system","run","at"}
    provenance     TEXT NOT NULL,
    -- how the link came to be: 'created' or 'matched'
    origin         TEXT NOT NULL,
    active         BIGINT NOT NULL DEFAULT 1,
    -- the full pass that last saw the source item (removal detection across resumed passes)
    seen_pass      TEXT,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (profile_id, source_id)
);
CREATE INDEX links_by_target ON links (profile_id, target_id);

CREATE TABLE cursors (
    profile_id TEXT NOT NULL,
    scope      TEXT NOT NULL,
    cursor     TEXT,
    -- id of the full pass in progress, if the cursor is inside one
    pass       TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (profile_id, scope)
);

CREATE TABLE journal (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id     TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    op_id      TEXT NOT NULL,
    phase      TEXT NOT NULL,  -- planned | applied | failed | recovered | abandoned
    action     TEXT NOT NULL,
    source_id  TEXT NOT NULL,
    target_id  TEXT,
    changes    TEXT NOT NULL,  -- JSON list of {field, before, after}
    detail     TEXT,
    at         BIGINT NOT NULL
);
CREATE INDEX journal_by_op ON journal (profile_id, op_id);

-- Ops journaled as planned whose outcome is not recorded yet: what a run
-- that dies leaves behind, and the only rows recovery reads.
CREATE TABLE pending_ops (
    profile_id TEXT NOT NULL,
    op_id      TEXT NOT NULL,
    source_id  TEXT NOT NULL,
    action     TEXT NOT NULL,
    detail     TEXT NOT NULL,
    PRIMARY KEY (profile_id, op_id)
);

CREATE TABLE quarantine (
    profile_id TEXT NOT NULL,
    source_id  TEXT NOT NULL,
    op_id      TEXT NOT NULL,
    error_class TEXT NOT NULL,
    error      TEXT NOT NULL,
    attempts   BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (profile_id, source_id)
);
