-- Current results: which row of a stage is the one its recipe resolves to now, how it was
-- produced, when it was last used, and whether its cache entry still exists.

-- When a run last ran the stage or found it in the cache.
ALTER TABLE stages ADD COLUMN last_used_at TEXT;
-- When `rsfm cache gc` removed its cache entry (NULL while the entry exists).
ALTER TABLE stages ADD COLUMN removed_at TEXT;
-- The stage's seed (its own, or its experiment's).
ALTER TABLE stages ADD COLUMN seed INTEGER;
UPDATE stages SET last_used_at = COALESCE(finished_at, started_at);
CREATE INDEX stages_by_use ON stages (experiment, name, last_used_at);

-- The current row of each (experiment, stage name): the one last used, among rows whose cache
-- entry was not removed. Older rows of the same stage are superseded (their keys came from
-- earlier versions of the recipe).
CREATE VIEW current_stages AS
SELECT s.* FROM stages AS s
WHERE s.removed_at IS NULL
  AND NOT EXISTS (
      SELECT 1 FROM stages AS t
      WHERE t.experiment = s.experiment AND t.name = s.name AND t.removed_at IS NULL
        AND (IFNULL(t.last_used_at, '') > IFNULL(s.last_used_at, '')
             OR (IFNULL(t.last_used_at, '') = IFNULL(s.last_used_at, '') AND t.key > s.key)));
