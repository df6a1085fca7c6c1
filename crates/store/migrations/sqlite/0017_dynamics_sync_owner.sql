-- Flow 3: the organization a mailbox's appointments, contacts and tasks
-- sync with is marked in the mailbox itself (Exchange); this is when this
-- hub last read or wrote the mark there, so the check runs once per
-- interval per mailbox, not before every run.
CREATE TABLE dynamics_sync_owner_checks (
    mailbox_id TEXT PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
    checked_at BIGINT NOT NULL
);
