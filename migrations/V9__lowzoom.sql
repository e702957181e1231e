-- Generalized low-zoom copies of vector layers (layers with `lowzoom_maxzoom`).
--
-- At zoom z a feature is stored as its *pixel cover*: the union of the zoom's screen
-- pixels (256 per tile, the global grid of zoom z + 8) whose centres it contains, in
-- EPSG:3857. Rasterized at 256 px a tile of covers is the exact geometry's picture, while
-- a tile reads a few vertices per feature instead of every vertex of the source. The
-- copies are keyed by `source` (`schema.table.geometry`) and feature id.
--
-- A row trigger on the layer's table records the ids inserted, deleted, or whose geometry
-- or id changed in `lowzoom_dirty`; tile queries compute those rows' covers live (with the
-- same function) and skip their stored copies, so a change shows at once. The server
-- refreshes the dirty rows when the table's change notification arrives. Tile queries
-- join the copies to the table, so rows gone (also by TRUNCATE) never show.

CREATE TABLE planscape.lowzoom_features (
    source text NOT NULL,
    z smallint NOT NULL,
    id bigint NOT NULL,
    geom geometry NOT NULL,
    PRIMARY KEY (source, z, id)
);
CREATE INDEX lowzoom_features_geom ON planscape.lowzoom_features USING gist (geom);

CREATE TABLE planscape.lowzoom_dirty (
    source text NOT NULL,
    id bigint NOT NULL,
    PRIMARY KEY (source, id)
);

-- One row per built source: what it was built from (the server rebuilds on mismatch).
CREATE TABLE planscape.lowzoom_sources (
    source text PRIMARY KEY,
    fingerprint text NOT NULL,
    built_at timestamptz NOT NULL DEFAULT now()
);

-- The pixel cover of `g` (any SRID) at zoom `z`, in EPSG:3857; NULL when `g` contains no
-- pixel centre of the zoom.
CREATE FUNCTION planscape.pixel_cover(g geometry, z integer) RETURNS geometry
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT ST_Simplify(ST_Union(s.geom), 0.0)
    FROM (SELECT ST_Transform(g, 3857) AS m) AS t,
         ST_SquareGrid(40075016.685578488 / (256 * 2 ^ z), t.m) AS s
    WHERE ST_Intersects(t.m, ST_Centroid(s.geom))
$$;

-- Row trigger: TG_ARGV[0] is the source key, TG_ARGV[1] the id column.
CREATE FUNCTION planscape.lowzoom_mark_dirty() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO planscape.lowzoom_dirty (source, id)
        VALUES (TG_ARGV[0], (to_jsonb(OLD) ->> TG_ARGV[1])::bigint)
        ON CONFLICT DO NOTHING;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO planscape.lowzoom_dirty (source, id)
        VALUES (TG_ARGV[0], (to_jsonb(NEW) ->> TG_ARGV[1])::bigint)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END;
$$;

-- Recomputes the dirty rows of a source (all rows when `rebuild`) for zooms
-- `zmin`..`zmax`; a rebuild also records `fingerprint`. Returns the rows written.
-- `tbl`, `id_col` and `geom_col` are quoted by the caller's format().
CREATE FUNCTION planscape.lowzoom_refresh(
    src text, tbl regclass, id_col text, geom_col text, zmin integer, zmax integer,
    fingerprint text, rebuild boolean
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    IF rebuild THEN
        DELETE FROM planscape.lowzoom_features WHERE source = src;
        DELETE FROM planscape.lowzoom_dirty WHERE source = src;
        EXECUTE format(
            'INSERT INTO planscape.lowzoom_features (source, z, id, geom) '
            'SELECT $1, c.z, c.id, c.g FROM (SELECT z, t.%1$I::bigint AS id, '
            'planscape.pixel_cover(t.%2$I, z) AS g FROM %3$s AS t, generate_series($2, $3) AS z '
            'WHERE t.%1$I IS NOT NULL) AS c WHERE c.g IS NOT NULL ORDER BY c.z, c.id',
            id_col, geom_col, tbl)
        USING src, zmin, zmax;
        GET DIAGNOSTICS n = ROW_COUNT;
        INSERT INTO planscape.lowzoom_sources (source, fingerprint, built_at)
        VALUES (src, fingerprint, now())
        ON CONFLICT (source) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, built_at = now();
    ELSE
        CREATE TEMP TABLE IF NOT EXISTS lowzoom_ids (id bigint PRIMARY KEY) ON COMMIT DELETE ROWS;
        WITH d AS (DELETE FROM planscape.lowzoom_dirty WHERE source = src RETURNING id)
        INSERT INTO lowzoom_ids SELECT id FROM d;
        DELETE FROM planscape.lowzoom_features f USING lowzoom_ids i
        WHERE f.source = src AND f.id = i.id;
        EXECUTE format(
            'INSERT INTO planscape.lowzoom_features (source, z, id, geom) '
            'SELECT $1, c.z, c.id, c.g FROM (SELECT z, t.%1$I::bigint AS id, '
            'planscape.pixel_cover(t.%2$I, z) AS g FROM %3$s AS t JOIN lowzoom_ids AS i '
            'ON i.id = t.%1$I::bigint, generate_series($2, $3) AS z) AS c WHERE c.g IS NOT NULL',
            id_col, geom_col, tbl)
        USING src, zmin, zmax;
        GET DIAGNOSTICS n = ROW_COUNT;
    END IF;
    RETURN n;
END;
$$;
