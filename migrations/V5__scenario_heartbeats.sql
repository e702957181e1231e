-- A running (or queued) scenario's server touches it every few seconds; runs whose
-- server stopped are found by their stale heartbeat and closed as failed.
ALTER TABLE planscape.scenarios ADD COLUMN heartbeat_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX scenarios_unfinished ON planscape.scenarios (heartbeat_at)
    WHERE status IN ('pending', 'running');
