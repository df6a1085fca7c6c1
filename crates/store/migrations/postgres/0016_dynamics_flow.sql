-- Flow 3's processing: the engine profiles derived from each Dynamics
-- mailbox (incoming e-mail tracked as e-mail activities, outgoing e-mail
-- sent through the mailbox, the owner's appointments, tasks and contacts). Kept when the mailbox or a kind is turned off
-- (disabled, with their links), so turning it on again finds what they did.
CREATE TABLE dynamics_flow_profiles (
    profile_id TEXT PRIMARY KEY,
    mailbox_id TEXT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    -- incoming-email | outgoing-email | appointments | tasks | contacts
    kind       TEXT NOT NULL
);

CREATE INDEX dynamics_flow_profiles_by_mailbox ON dynamics_flow_profiles (mailbox_id);

-- Dynamics e-mails sent through a mailbox and not yet marked sent in
-- Dynamics (the mark failed or has not been made): marked after the next run.
CREATE TABLE dynamics_sent_marks (
    profile_id TEXT NOT NULL,
    -- the e-mail's activityid
    source_id  TEXT NOT NULL,
    sent_at    BIGINT NOT NULL,
    PRIMARY KEY (profile_id, source_id)
);

-- Messages moved to the mailbox's Undeliverable folder because tracking
-- them as e-mail activities failed ("Move Failed Emails to Undeliverable
-- Folder").
CREATE TABLE dynamics_undeliverable (
    profile_id TEXT NOT NULL,
    -- the message's id in the Inbox when it failed
    source_id  TEXT NOT NULL,
    -- its id in the Undeliverable folder
    moved_id   TEXT,
    error      TEXT NOT NULL,
    moved_at   BIGINT NOT NULL,
    PRIMARY KEY (profile_id, source_id)
);
