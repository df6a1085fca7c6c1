-- Credentials are bound to what they were entered for: the connection's
-- allowed hosts, private-network flag and endpoint settings (JSON, also the
-- associated data of the sealed value). NULL: sealed before bindings existed;
-- the hub binds such a credential to the connection as it is on first use.
ALTER TABLE credentials ADD COLUMN binding TEXT;

-- Every company row is one incarnation of its id; a scoped API token names
-- the incarnation it was made for, so a company deleted and created again
-- with the same id inherits none of the old tokens.
ALTER TABLE companies ADD COLUMN incarnation TEXT;
ALTER TABLE api_tokens ADD COLUMN company_incarnation TEXT;
UPDATE companies SET incarnation = lower(hex(randomblob(16)));
UPDATE api_tokens SET company_incarnation =
    (SELECT incarnation FROM companies WHERE companies.id = api_tokens.company_id)
    WHERE company_id IS NOT NULL;
-- Tokens of companies already deleted are revoked.
UPDATE api_tokens SET revoked_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000
    WHERE company_id IS NOT NULL AND company_incarnation IS NULL AND revoked_at IS NULL;
