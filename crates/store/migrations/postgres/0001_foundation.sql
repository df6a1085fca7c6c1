CREATE TABLE plugins (
    id           TEXT PRIMARY KEY,
    version      TEXT NOT NULL,
    vendor       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    wit_version  TEXT NOT NULL,
    digest       TEXT NOT NULL,
    manifest     TEXT NOT NULL,
    component    TEXT NOT NULL,
    installed_at BIGINT NOT NULL
);

CREATE TABLE connections (
    id                    TEXT PRIMARY KEY,
    plugin_id             TEXT NOT NULL REFERENCES plugins(id),
    config                TEXT NOT NULL,
    allowed_hosts         TEXT NOT NULL,
    allow_private_network BIGINT NOT NULL DEFAULT 0,
    max_concurrent        BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);

CREATE TABLE credentials (
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    slot          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    key_id        TEXT NOT NULL,
    nonce         BYTEA NOT NULL,
    ciphertext    BYTEA NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (connection_id, slot)
);

CREATE TABLE plugin_state (
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (connection_id, key)
);
