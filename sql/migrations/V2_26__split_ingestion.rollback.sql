-- Undoes V2_26: splits under way are dropped (their documents keep their previous chunks and stay
-- `embedding` until reindexed), and so are their range jobs.
DROP TABLE split_chunks;
DROP TABLE document_splits;
DELETE FROM jobs WHERE kind = 'embed_range';
