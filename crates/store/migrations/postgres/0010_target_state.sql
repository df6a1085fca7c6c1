-- Two-sided sync: what the target held when the engine last read a linked
-- item (JSON {"fields": {...}, "active": bool}; NULL = never read), so an
-- edit made there is told apart from the echo of the engine's own write.
ALTER TABLE links ADD COLUMN target_seen TEXT;
-- When each profile last finished a full reconcile (ms since the epoch).
CREATE TABLE reconciles (
    profile_id   TEXT PRIMARY KEY,
    full_at      BIGINT NOT NULL
);
