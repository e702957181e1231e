-- Usage analytics (src/analytics): raw events kept `analytics.raw_retention_days`, and
-- daily roll-ups kept for good. No IP address is stored anywhere: page views carry at
-- most a salted visitor hash whose salt lives in the server's memory and changes every
-- day; users appear by id only (no foreign key: counts outlive deleted accounts).
CREATE TABLE planscape.analytics_events (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('signup', 'signin', 'plan_created',
                'plan_changed', 'plan_shared', 'scores_read', 'scenario_run', 'export',
                'page_view')),
    user_id     bigint,
    visitor     bigint,
    plan_id     bigint,
    scenario_id bigint,
    -- A bounded label: the scenario's outcome, the export's format, the page viewed.
    detail      text CHECK (length(detail) <= 32),
    duration_ms bigint,
    -- Where a created plan lies: a point on it snapped to 0.01 degrees (about 1 km).
    location    geometry(Point, 4326)
);
CREATE INDEX analytics_events_at ON planscape.analytics_events (at);

-- Counts per UTC day: `metric` an event kind (with `key` its detail, or '') or
-- `active_users` / `visitors` (distinct users / visitor hashes of the day, key '').
CREATE TABLE planscape.analytics_daily (
    day    date NOT NULL,
    metric text NOT NULL,
    key    text NOT NULL DEFAULT '',
    value  bigint NOT NULL,
    PRIMARY KEY (day, metric, key)
);

-- Tile requests per UTC day, layer and zoom, added in batches from in-memory counters.
CREATE TABLE planscape.analytics_tiles (
    day      date NOT NULL,
    layer    text NOT NULL,
    zoom     smallint NOT NULL CHECK (zoom BETWEEN 0 AND 24),
    requests bigint NOT NULL,
    PRIMARY KEY (day, layer, zoom)
);

-- Plans created per UTC day at each snapped point (the heat map's input).
CREATE TABLE planscape.analytics_plan_points (
    day   date NOT NULL,
    lon   double precision NOT NULL,
    lat   double precision NOT NULL,
    plans bigint NOT NULL,
    PRIMARY KEY (day, lon, lat)
);
