-- Flow 3: the organization a mailbox's appointments, contacts and tasks
-- sync with is marked in the mailbox itself (Exchange); this is when this
-- hub last saw its own mark there, so the check runs once per interval, not
-- before every run.
CREATE TABLE dynamics_sync_owner_checks (
    mailbox_id TEXT PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
    -- the mark this organization writes (its Dynamics URL)
    owner      TEXT NOT NULL,
    checked_at BIGINT NOT NULL
);
