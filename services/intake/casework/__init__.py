"""Intake's casework domain folder: what the grid worker and the community do with a case
after reporting it — fix on the spot (随手做), send back for rework (返工), rate (群众评单),
reopen, and merge duplicates."""
