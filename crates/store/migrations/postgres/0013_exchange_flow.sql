-- The engine profiles flow 1 derives from an Exchange profile: one per
-- enabled resource and kind (appointments to Exchange, appointments
-- imported, to-dos, service calls, contacts), and one for the public folder
-- of all PSA contacts (no resource). Kept when a resource or a kind is
-- turned off (disabled, with its links), so turning it on again finds what
-- it wrote.

CREATE TABLE exchange_flow_profiles (
    profile_id          TEXT PRIMARY KEY,
    exchange_profile_id TEXT NOT NULL REFERENCES exchange_profiles(id) ON DELETE CASCADE,
    -- the PSA resource; NULL for the public folder
    resource_id         TEXT,
    -- appointments | import | todos | service-calls | contacts | public-contacts
    kind                TEXT NOT NULL
);

CREATE INDEX exchange_flow_profiles_by_exchange ON exchange_flow_profiles (exchange_profile_id);
