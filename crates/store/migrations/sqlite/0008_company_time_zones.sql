-- The IANA time zone of a company (e.g. 'Europe/Berlin'): a profile's daily_at
-- is a local time there. Companies saved before have their daily runs in UTC.
ALTER TABLE companies ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
