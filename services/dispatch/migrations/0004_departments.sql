-- Issue 5: departments describe the areas they serve (area path prefixes such as 'YA' or
-- 'YA/YA02/YA0201') and their duty contacts ([{"name", "phone", "role"?}]); street offices
-- (街道办事处) join the kinds.
ALTER TABLE departments
    ADD COLUMN areas      text[] NOT NULL DEFAULT '{}',
    ADD COLUMN contacts   jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(contacts) = 'array'),
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE departments DROP CONSTRAINT departments_kind_check;
ALTER TABLE departments ADD CONSTRAINT departments_kind_check CHECK (
    kind IN ('functional', 'street_office', 'co_building', 'property', 'volunteer'));
