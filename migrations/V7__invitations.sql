-- Sharing by invitation: an owner invites an email with a role; the person with that
-- email (now, or once they sign up) accepts or declines. Only an accepted invitation
-- becomes a row of plan_members, the one table that grants access, so a pending one
-- gives nothing. Answered and revoked invitations are kept (with their time) so that
-- the per-inviter limits count every invitation sent.
CREATE TABLE planscape.plan_invitations (
    id          bigserial PRIMARY KEY,
    plan_id     bigint NOT NULL REFERENCES planscape.plans ON DELETE CASCADE,
    inviter_id  bigint NOT NULL REFERENCES planscape.users ON DELETE CASCADE,
    email       text NOT NULL CHECK (email = lower(email) AND length(email) <= 254),
    role        text NOT NULL CHECK (role IN ('viewer', 'collaborator', 'owner')),
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'accepted', 'declined', 'revoked')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    answered_at timestamptz
);
-- At most one pending invitation of an email to a plan.
CREATE UNIQUE INDEX plan_invitations_pending
    ON planscape.plan_invitations (plan_id, email) WHERE status = 'pending';
CREATE INDEX plan_invitations_email ON planscape.plan_invitations (email) WHERE status = 'pending';
CREATE INDEX plan_invitations_inviter ON planscape.plan_invitations (inviter_id, created_at);
