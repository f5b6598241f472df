-- rsfm results store. Times are RFC 3339 UTC text (`strftime('%Y-%m-%dT%H:%M:%fZ')`);
-- JSON columns hold text that SQLite's json functions read.

-- One row per `rsfm` command that writes to the store.
CREATE TABLE invocations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at  TEXT    NOT NULL,
    finished_at TEXT,
    argv        TEXT    NOT NULL,              -- JSON array of strings
    host        TEXT    NOT NULL,
    pid         INTEGER NOT NULL,
    boot_id     TEXT    NOT NULL DEFAULT '',   -- so a pid from before a reboot is not taken for alive
    results_dir TEXT    NOT NULL,
    summary     TEXT,                          -- JSON object, set when the invocation ends
    status      TEXT    NOT NULL DEFAULT 'running'
);

-- The latest state of each stage, by content key.
CREATE TABLE stages (
    key           TEXT    PRIMARY KEY,
    name          TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    experiment    TEXT    NOT NULL,
    model         TEXT,
    task          TEXT,
    dataset       TEXT,
    fraction      REAL,
    matrix        TEXT    NOT NULL DEFAULT '{}', -- JSON object
    params        TEXT    NOT NULL DEFAULT '{}', -- JSON object
    status        TEXT    NOT NULL CHECK (status IN
                      ('pending', 'running', 'succeeded', 'cached', 'failed', 'interrupted', 'skipped')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    started_at    TEXT,
    finished_at   TEXT,
    duration_s    REAL,
    host          TEXT,
    device        TEXT,
    invocation_id INTEGER REFERENCES invocations (id),
    error         TEXT,
    stderr_tail   TEXT,
    log_path      TEXT,
    work_dir      TEXT,
    cache_dir     TEXT
);
CREATE INDEX stages_by_experiment ON stages (experiment, name);
CREATE INDEX stages_by_status ON stages (status);

-- Metric values of a stage: final ones have step NULL. A NaN value is stored as NULL.
CREATE TABLE metrics (
    stage_key TEXT    NOT NULL REFERENCES stages (key) ON DELETE CASCADE,
    name      TEXT    NOT NULL,
    value     REAL,
    step      INTEGER
);
-- NULL steps are distinct in a plain UNIQUE constraint: index the step with a sentinel instead.
CREATE UNIQUE INDEX metrics_unique ON metrics (stage_key, name, IFNULL(step, -9223372036854775808));
CREATE INDEX metrics_by_name ON metrics (name);

-- Numbers the paper reports, cell by cell.
CREATE TABLE reported (
    table_name TEXT NOT NULL,
    row        TEXT NOT NULL,
    col        TEXT NOT NULL,
    value      REAL,
    source     TEXT,
    PRIMARY KEY (table_name, row, col)
);

-- Files a stage produced (its cache entry's manifest).
CREATE TABLE artifacts (
    stage_key TEXT    NOT NULL REFERENCES stages (key) ON DELETE CASCADE,
    path      TEXT    NOT NULL,
    size      INTEGER NOT NULL,
    sha256    TEXT    NOT NULL,
    PRIMARY KEY (stage_key, path)
);

-- Stat cache of dataset fingerprints: a file whose (size, mtime, inode) still match is not re-read.
CREATE TABLE file_hashes (
    path     TEXT    PRIMARY KEY,
    size     INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode    INTEGER NOT NULL,
    sha256   TEXT    NOT NULL
) WITHOUT ROWID;

-- History: one row per finished attempt of a stage.
CREATE TABLE stage_runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    stage_key     TEXT    NOT NULL REFERENCES stages (key) ON DELETE CASCADE,
    invocation_id INTEGER REFERENCES invocations (id),
    attempt       INTEGER NOT NULL,
    status        TEXT    NOT NULL,
    started_at    TEXT,
    finished_at   TEXT    NOT NULL,
    duration_s    REAL,
    host          TEXT,
    device        TEXT,
    error         TEXT
);
CREATE INDEX stage_runs_by_key ON stage_runs (stage_key, id);
