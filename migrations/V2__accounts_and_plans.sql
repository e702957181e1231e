-- Accounts, sessions, plans (planning areas) and their members.

CREATE TABLE planscape.users (
    id            bigserial PRIMARY KEY,
    email         text NOT NULL CHECK (email = lower(email) AND length(email) <= 254),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    password_hash text NOT NULL,
    is_admin      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email ON planscape.users (email);

-- Opaque session tokens are stored only as hashes.
CREATE TABLE planscape.sessions (
    token_hash  bytea PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES planscape.users ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX sessions_user ON planscape.sessions (user_id);

-- Where plans may lie: a generous outline of the State of California (a few kilometres
-- beyond the border and the coast, islands included), and the planning regions.
CREATE TABLE planscape.boundaries (
    name text PRIMARY KEY,
    geom geometry(Polygon, 4326) NOT NULL
);
INSERT INTO planscape.boundaries VALUES ('california', ST_GeomFromText('POLYGON((
    -124.80 42.02, -119.99 42.02, -119.99 39.00, -114.62 35.00, -114.56 34.80,
    -114.12 34.27, -114.42 34.08, -114.52 33.93, -114.49 33.69, -114.71 33.41,
    -114.69 33.08, -114.46 32.84, -114.71 32.71, -117.12 32.52, -117.30 32.45,
    -119.00 32.60, -120.60 33.80, -120.90 34.45, -121.20 35.30, -122.10 36.20,
    -122.30 36.90, -122.90 37.60, -123.40 37.90, -124.00 38.90, -124.70 40.40,
    -124.60 41.50, -124.80 42.02))', 4326));

CREATE TABLE planscape.regions (
    slug text PRIMARY KEY,
    name text NOT NULL
);
INSERT INTO planscape.regions VALUES
    ('sierra_nevada', 'Sierra Nevada'),
    ('southern_california', 'Southern California'),
    ('central_coast', 'Central Coast'),
    ('northern_california', 'Northern California');

CREATE TABLE planscape.plans (
    id          bigserial PRIMARY KEY,
    owner_id    bigint NOT NULL REFERENCES planscape.users ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    region      text NOT NULL REFERENCES planscape.regions,
    geom        geometry(MultiPolygon, 4326) NOT NULL CHECK (ST_IsValid(geom)),
    area_acres  double precision NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX plans_owner ON planscape.plans (owner_id);
CREATE INDEX plans_geom ON planscape.plans USING gist (geom);

-- Members other than the owner (whose role is implied by plans.owner_id).
CREATE TABLE planscape.plan_members (
    plan_id    bigint NOT NULL REFERENCES planscape.plans ON DELETE CASCADE,
    user_id    bigint NOT NULL REFERENCES planscape.users ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('viewer', 'collaborator', 'owner')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (plan_id, user_id)
);
CREATE INDEX plan_members_user ON planscape.plan_members (user_id);
