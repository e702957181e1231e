-- Password resets by email: a random single-use token, mailed to the account's
-- address and stored only as a hash (as sessions are); a new request replaces the
-- account's earlier tokens.
CREATE TABLE planscape.password_resets (
    token_hash  bytea PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES planscape.users ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX password_resets_user ON planscape.password_resets (user_id);
CREATE INDEX password_resets_expiry ON planscape.password_resets (expires_at);

-- Deleting an account keeps the scenarios it made on other people's plans (their
-- maker is then unknown) instead of deleting them with it.
ALTER TABLE planscape.scenarios ALTER COLUMN created_by DROP NOT NULL;
ALTER TABLE planscape.scenarios DROP CONSTRAINT scenarios_created_by_fkey;
ALTER TABLE planscape.scenarios ADD CONSTRAINT scenarios_created_by_fkey
    FOREIGN KEY (created_by) REFERENCES planscape.users ON DELETE SET NULL;
