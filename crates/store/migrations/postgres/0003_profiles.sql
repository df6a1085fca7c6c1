-- Profiles: source connection → mapper plugin → target connection, with rules.
CREATE TABLE profiles (
    id                TEXT PRIMARY KEY,
    source_connection TEXT NOT NULL REFERENCES connections(id),
    source_scope      TEXT NOT NULL,
    mapper_plugin     TEXT NOT NULL REFERENCES plugins(id),
    mapper_options    TEXT NOT NULL,
    target_connection TEXT NOT NULL REFERENCES connections(id),
    target_scope      TEXT NOT NULL,
    rules             TEXT NOT NULL,
    page_size         BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
