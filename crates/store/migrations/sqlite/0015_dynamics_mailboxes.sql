-- Flow 3 (Dynamics 365 server-side synchronization): email server profiles,
-- the default email processing of a Dynamics organization, and the Test &
-- Enable state of each mailbox.

-- An email server profile: how mailboxes reach their Exchange server. The
-- profile owns one connection (`<profile>-mail`, the `ews` or `graph`
-- plugin) holding its credentials, sealed.
CREATE TABLE email_server_profiles (
    id            TEXT PRIMARY KEY,
    company_id    TEXT,
    connection_id TEXT NOT NULL UNIQUE REFERENCES connections(id),
    -- JSON of the profile's settings (the form as saved)
    settings      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- "Email Configuration Settings" of one Dynamics organization (its connection).
CREATE TABLE email_processing_defaults (
    connection_id     TEXT PRIMARY KEY REFERENCES connections(id) ON DELETE CASCADE,
    server_profile_id TEXT REFERENCES email_server_profiles(id),
    -- server-side-sync | none
    incoming          TEXT NOT NULL,
    outgoing          TEXT NOT NULL,
    act               TEXT NOT NULL,
    -- "Process emails only for approved users and queues"
    require_approval  BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

-- The id of a mailbox in the system it was read from (Dataverse mailboxid).
ALTER TABLE mailboxes ADD COLUMN remote_id TEXT;

-- Test & Enable of a mailbox: statuses use Dataverse's values
-- (0 Not Run, 1 Success, 2 Failure).
CREATE TABLE mailbox_tests (
    mailbox_id      TEXT PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
    -- a test is waiting (testemailconfigurationscheduled)
    scheduled       BIGINT NOT NULL,
    -- not before (postponetestemailconfigurationuntil)
    due_at          BIGINT NOT NULL,
    -- a worker holds the test until then
    claimed_until   BIGINT,
    -- transient failures so far (testemailconfigurationretrycount)
    retry_count     BIGINT NOT NULL,
    incoming_status BIGINT NOT NULL,
    outgoing_status BIGINT NOT NULL,
    act_status      BIGINT NOT NULL,
    -- testmailboxaccesscompletedon
    tested_at       BIGINT,
    -- transient | permanent
    error_class     TEXT,
    error_code      TEXT,
    error_message   TEXT,
    error_remedy    TEXT
);
CREATE INDEX mailbox_tests_due ON mailbox_tests (scheduled, due_at);

-- An alert addressed to the owner of one mailbox (its alerts wall).
ALTER TABLE alerts ADD COLUMN mailbox_id TEXT;
