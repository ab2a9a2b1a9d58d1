-- Issue 5: departments add after-photos (整改后) of their result. A photo says which
-- department uploaded it (NULL: a grid worker or the community did).
ALTER TABLE photos ADD COLUMN uploaded_by_department text;
