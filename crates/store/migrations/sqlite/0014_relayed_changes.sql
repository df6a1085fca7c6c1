-- Target changes one profile read in its source and relays to the profile
-- that owns them (rules `relay_written_by` / `feed_relayed`): the reverse
-- flow of a pair reads the shared folder once per cycle. The latest state of
-- each target item waits here until the owning profile's run has applied
-- the plan that looked at it.

CREATE TABLE relayed_changes (
    profile_id TEXT NOT NULL,
    target_id  TEXT NOT NULL,
    -- the item as read (JSON of the host's item model)
    item       TEXT NOT NULL,
    relayed_at BIGINT NOT NULL,
    PRIMARY KEY (profile_id, target_id)
);
