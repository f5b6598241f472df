-- Archives `rsfm submit` wrote for an evaluation server, and the scores `rsfm ingest` read back
-- from the server's reply: `test-server` metrics of the stage that predicted the test images,
-- tied to the archive they score.
CREATE TABLE submissions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    stage_key      TEXT    NOT NULL REFERENCES stages (key) ON DELETE CASCADE,
    server         TEXT    NOT NULL,            -- `dota-v2`, `loveda`
    archive_path   TEXT    NOT NULL,
    archive_sha256 TEXT    NOT NULL,
    images         INTEGER NOT NULL,
    created_at     TEXT    NOT NULL,
    reply_path     TEXT,                        -- set by `rsfm ingest`
    reply_sha256   TEXT,
    ingested_at    TEXT
);
CREATE INDEX submissions_by_stage ON submissions (stage_key, server, id);

-- The scores of one ingested reply, as fractions (also copied into `metrics`, where reports and
-- queries read them, and kept there when the stage's own metrics are replaced).
CREATE TABLE server_scores (
    submission_id INTEGER NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    value         REAL    NOT NULL,
    PRIMARY KEY (submission_id, name)
);
