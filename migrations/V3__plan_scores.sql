-- Condition scores of plans, recomputed when the plan's geometry changes.
CREATE TABLE planscape.plan_scores (
    plan_id     bigint PRIMARY KEY REFERENCES planscape.plans ON DELETE CASCADE,
    geom_md5    text NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    scores      jsonb NOT NULL
);
