-- `rsfm status --clear`: when the user dismissed a failed or interrupted stage from `status`
-- (the row and its history stay). A new attempt of the stage clears it.
ALTER TABLE stages ADD COLUMN dismissed_at TEXT;
