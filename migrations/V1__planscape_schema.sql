-- The server's own schema and the change-notification function that vector layers'
-- tables call (the server attaches a statement-level trigger to each layer's table).
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE SCHEMA IF NOT EXISTS planscape;

CREATE OR REPLACE FUNCTION planscape.notify_table_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('planscape_table_change', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
    RETURN NULL;
END;
$$;
