-- Runs submitted with `rsfm run --backend slurm --detach`: every pending stage one Slurm job,
-- each depending on the jobs of the stages it needs. The jobs commit their own cache entries and
-- never open this database; `rsfm status` reads their states and ingests the finished ones.
CREATE TABLE detached_runs (
    id            TEXT    PRIMARY KEY,              -- `detach-<invocation id>`, printed by the run
    invocation_id INTEGER NOT NULL REFERENCES invocations (id),
    submitted_at  TEXT    NOT NULL,
    cancelled_at  TEXT                              -- set by `rsfm cancel`
);

-- One submitted stage of a detached run, in submission (dependency) order.
CREATE TABLE detached_jobs (
    run_id      TEXT    NOT NULL REFERENCES detached_runs (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,                   -- submission order
    stage_key   TEXT    NOT NULL,
    stage       TEXT    NOT NULL,                   -- `experiment/stage@matrix`
    job_id      INTEGER NOT NULL,
    needs       TEXT    NOT NULL,                   -- JSON array of the stage keys it needs in this run
    work_dir    TEXT    NOT NULL,
    log_offset  INTEGER NOT NULL,                   -- the stage log's length before this job wrote to it
    record      TEXT    NOT NULL,                   -- JSON of the stage's store record, written at ingest
    state       TEXT    NOT NULL DEFAULT 'queued',  -- queued | succeeded | failed | skipped | interrupted | cancelled
    reason      TEXT,
    ingested_at TEXT,
    PRIMARY KEY (run_id, stage_key)
);
CREATE INDEX detached_jobs_by_job ON detached_jobs (job_id);
