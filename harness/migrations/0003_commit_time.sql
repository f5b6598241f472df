-- Seconds a stage's commit to the cache took (hashing its output, the manifest, fsync), apart
-- from `duration_s`, the stage's own time; NULL where nothing was committed.
ALTER TABLE stages ADD COLUMN commit_s REAL;
ALTER TABLE stage_runs ADD COLUMN commit_s REAL;
