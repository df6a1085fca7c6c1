-- Mailboxes of a connection: discovered from the directory, enabled and
-- approved by an operator, with per-mailbox settings.

CREATE TABLE mailboxes (
    -- `<connection>:<address in lower case>`
    id            TEXT PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    address       TEXT NOT NULL,
    display_name  TEXT,
    enabled       BIGINT NOT NULL DEFAULT 0,
    approved      BIGINT NOT NULL DEFAULT 0,
    -- JSON object of per-mailbox settings
    settings      TEXT NOT NULL DEFAULT '{}',
    status        TEXT NOT NULL DEFAULT 'untested', -- untested | ok | disabled-auth
    status_detail TEXT,
    discovered_at BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX mailboxes_by_connection ON mailboxes (connection_id, address);
