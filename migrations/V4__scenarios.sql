-- Scenarios of a plan and their ranked project areas.
CREATE TABLE planscape.scenarios (
    id          bigserial PRIMARY KEY,
    plan_id     bigint NOT NULL REFERENCES planscape.plans ON DELETE CASCADE,
    created_by  bigint NOT NULL REFERENCES planscape.users ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    config      jsonb NOT NULL,
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'running', 'done', 'failed')),
    reason      text,
    summary     jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX scenarios_plan ON planscape.scenarios (plan_id);

CREATE TABLE planscape.project_areas (
    id          bigserial PRIMARY KEY,
    scenario_id bigint NOT NULL REFERENCES planscape.scenarios ON DELETE CASCADE,
    rank        integer NOT NULL,
    score       double precision NOT NULL,
    area_acres  double precision NOT NULL,
    stand_count integer NOT NULL,
    geom        geometry(MultiPolygon, 4326) NOT NULL,
    UNIQUE (scenario_id, rank)
);
CREATE INDEX project_areas_geom ON planscape.project_areas USING gist (geom);
