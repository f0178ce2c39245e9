-- Undoes V2_13: sources, their runs and items are gone (their documents stay).
DROP TABLE source_items;
DROP TABLE source_runs;
DROP TABLE sources;
