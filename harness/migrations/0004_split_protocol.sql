-- What an evaluation's numbers are: the split it scored (`val`, `test`) and the settings that
-- change them (`ap=voc07 iou=0.5 protocol=devkit classes=v2.0`, `labels=eroded flip=false`),
-- so that reports and queries compare like with like. NULL for other stages.
ALTER TABLE stages ADD COLUMN split TEXT;
ALTER TABLE stages ADD COLUMN protocol TEXT;
