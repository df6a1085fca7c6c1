-- Flow 1's Exchange server profiles (the MS Exchange Extension's General and
-- Synchronization tabs) and the PSA resources listed on its Resources tab.
-- The profile owns one connection (`connection_id`, EWS or Graph) that holds
-- the synchronization account's sealed credential and, without
-- impersonation, each user's own; per-resource toggles live in the mailbox
-- row of that connection (`mailboxes.settings`).

CREATE TABLE exchange_profiles (
    id                    TEXT PRIMARY KEY,
    company_id            TEXT,
    name                  TEXT NOT NULL,
    enabled               BIGINT NOT NULL,
    connection_id         TEXT NOT NULL UNIQUE REFERENCES connections(id),
    psa_connection_id     TEXT NOT NULL REFERENCES connections(id),
    server_address        TEXT NOT NULL,
    virtual_directory     TEXT,
    domain                TEXT,
    version               TEXT NOT NULL,
    hosted_by_third_party BIGINT NOT NULL,
    use_graph             BIGINT NOT NULL,
    allow_private_network BIGINT NOT NULL,
    interval_minutes      BIGINT NOT NULL,
    -- basic | oauth
    account_auth          TEXT NOT NULL,
    account_username      TEXT NOT NULL,
    account_mailbox       TEXT NOT NULL,
    account_tenant        TEXT,
    account_token_url     TEXT,
    use_for_users         BIGINT NOT NULL,
    -- `;`-separated e-mail addresses
    notify_to             TEXT NOT NULL,
    -- JSON object: the Synchronization tab (see control::exchange_profiles::SyncSettings)
    sync_settings         TEXT NOT NULL,
    -- JSON: the last save's connection test (outcome and findings)
    last_test             TEXT,
    last_tested_at        BIGINT,
    -- set when a server field changed: the next runs re-synchronize every item
    resync_requested_at   BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);

CREATE TABLE exchange_resources (
    profile_id          TEXT NOT NULL REFERENCES exchange_profiles(id) ON DELETE CASCADE,
    -- the PSA's resource id
    resource_id         TEXT NOT NULL,
    name                TEXT,
    email               TEXT,
    -- the mailbox row of the profile's connection once enabled
    mailbox_id          TEXT,
    last_attempted_at   BIGINT,
    confirmation_sent_at BIGINT,
    discovered_at       BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    PRIMARY KEY (profile_id, resource_id)
);
