-- Issue 4, item 1: the jurisdiction tree gets micro-grids (微网格), boundaries and grid
-- workers. A boundary is GeoJSON (Polygon/MultiPolygon, WGS84 [lon, lat]) kept with its
-- bounding box, so "which grid holds this point" first narrows by box (GiST index on the
-- built-in box type, no PostGIS) and then tests the few candidates exactly.
ALTER TABLE areas DROP CONSTRAINT areas_level_check;
ALTER TABLE areas ADD CONSTRAINT areas_level_check
    CHECK (level IN ('district', 'street', 'community', 'grid', 'micro_grid'));

ALTER TABLE areas
    ADD COLUMN boundary   jsonb,
    ADD COLUMN min_lon    double precision,
    ADD COLUMN min_lat    double precision,
    ADD COLUMN max_lon    double precision,
    ADD COLUMN max_lat    double precision,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

ALTER TABLE areas ADD CONSTRAINT areas_boundary_has_bbox CHECK (
    (boundary IS NULL AND min_lon IS NULL AND min_lat IS NULL AND max_lon IS NULL AND max_lat IS NULL)
    OR (boundary IS NOT NULL AND min_lon <= max_lon AND min_lat <= max_lat));
ALTER TABLE areas ADD CONSTRAINT areas_boundary_only_on_grids
    CHECK (boundary IS NULL OR level IN ('grid', 'micro_grid'));

CREATE INDEX areas_parent_code ON areas (parent_code);
CREATE INDEX areas_bbox ON areas
    USING gist (box(point(min_lon, min_lat), point(max_lon, max_lat)))
    WHERE boundary IS NOT NULL;

-- 网格员: who walks which grid (or micro-grid).
CREATE TABLE grid_workers (
    subject     text NOT NULL,
    grid_code   text NOT NULL REFERENCES areas (code),
    assigned_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject, grid_code)
);
CREATE INDEX grid_workers_grid_code ON grid_workers (grid_code);
