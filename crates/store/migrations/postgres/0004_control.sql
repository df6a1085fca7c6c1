-- Control plane: customer companies, schedules, runs claimed through leases,
-- stored plans, API tokens and alerts.

CREATE TABLE companies (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    -- ';'-separated e-mail recipients of failure notices and confirmations
    notify_to  TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);

ALTER TABLE connections ADD COLUMN company_id TEXT REFERENCES companies(id);
-- Why the connection is stopped (a permanent auth error); NULL while it runs.
ALTER TABLE connections ADD COLUMN stopped TEXT;

ALTER TABLE profiles ADD COLUMN company_id TEXT REFERENCES companies(id);
ALTER TABLE profiles ADD COLUMN enabled BIGINT NOT NULL DEFAULT 1;
-- Seconds between scheduled runs; NULL = no interval schedule.
ALTER TABLE profiles ADD COLUMN interval_secs BIGINT;
-- "HH:MM" (UTC) of a daily run; NULL = none.
ALTER TABLE profiles ADD COLUMN daily_at TEXT;
-- The next run starts a full pass (server settings changed).
ALTER TABLE profiles ADD COLUMN resync_requested BIGINT NOT NULL DEFAULT 0;

-- Every run: queued by a trigger, claimed by one process through a lease
-- that it renews with heartbeats; an expired lease is taken over.
CREATE TABLE runs (
    id           TEXT PRIMARY KEY,
    profile_id   TEXT NOT NULL,
    company_id   TEXT,
    trigger_kind TEXT NOT NULL,  -- manual | schedule | daily | saved | api | approval
    mode         TEXT NOT NULL,  -- run | dry-run | apply-plan
    plan_id      TEXT,
    status       TEXT NOT NULL,  -- queued | running | succeeded | failed | held | planned | stale
    requested_at BIGINT NOT NULL,
    started_at   BIGINT,
    finished_at  BIGINT,
    lease_owner  TEXT,
    lease_until  BIGINT,
    attempts     BIGINT NOT NULL DEFAULT 0,
    report       TEXT,           -- JSON counts
    error        TEXT
);
CREATE INDEX runs_by_profile ON runs (profile_id, requested_at);
CREATE INDEX runs_by_status ON runs (status, requested_at);
-- Never two runs of a profile at once.
CREATE UNIQUE INDEX runs_one_active ON runs (profile_id) WHERE status IN ('queued', 'running');

-- Plans kept for review: every dry run, and every run the brakes held.
CREATE TABLE plans (
    id           TEXT PRIMARY KEY,
    profile_id   TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    status       TEXT NOT NULL,  -- proposed | held | applied | discarded | stale
    reason       TEXT,
    counts       TEXT NOT NULL,
    -- the source cursor the plan was pulled from; apply refuses if it moved
    base_cursor  TEXT,
    pages        TEXT NOT NULL,  -- JSON: per page cursor/pass/seen
    created_at   BIGINT NOT NULL,
    decided_at   BIGINT
);
CREATE INDEX plans_by_profile ON plans (profile_id, created_at);

CREATE TABLE plan_items (
    plan_id   TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    page      BIGINT NOT NULL,
    source_id TEXT NOT NULL,
    action    TEXT NOT NULL,
    op        TEXT NOT NULL,     -- JSON of the planned op with its field changes
    PRIMARY KEY (plan_id, seq)
);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,  -- admin | operator | viewer
    company_id   TEXT,           -- NULL = every company
    secret_hash  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

CREATE TABLE alerts (
    id            TEXT PRIMARY KEY,
    company_id    TEXT,
    connection_id TEXT,
    profile_id    TEXT,
    run_id        TEXT,
    severity      TEXT NOT NULL, -- error | warning | info
    code          TEXT NOT NULL,
    message       TEXT NOT NULL,
    at            BIGINT NOT NULL,
    resolved_at   BIGINT
);
CREATE INDEX alerts_by_company ON alerts (company_id, at);

-- An operator chose to skip a quarantined item: it is not retried until
-- the source brings it again.
ALTER TABLE quarantine ADD COLUMN skipped BIGINT NOT NULL DEFAULT 0;
