-- Ask (issue 17): the same tables and meaning as migrations/0006_passages.sql. Ranking is
-- ts_rank over an English (stemmed) tsvector of the speaker and the words, accents folded,
-- as SQLite ranks with BM25 over a Porter-stemmed FTS5 index.
CREATE TABLE passages (
    id        BIGSERIAL PRIMARY KEY,
    job_id    TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    label     TEXT,
    speaker   TEXT,
    start_ms  BIGINT,
    text      TEXT NOT NULL,
    embedding BYTEA,
    search    TSVECTOR GENERATED ALWAYS AS (
        setweight(to_tsvector('english', focusflow_fold(coalesce(speaker, ''))), 'B')
        || setweight(to_tsvector('english', focusflow_fold(text)), 'D')
    ) STORED,
    UNIQUE (job_id, seq)
);
CREATE INDEX passages_search ON passages USING GIN (search);

CREATE TABLE passage_jobs (
    job_id     TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    indexed_at BIGINT NOT NULL
);

CREATE TABLE asks (
    id         TEXT PRIMARY KEY,
    job_id     TEXT REFERENCES jobs (id) ON DELETE CASCADE,
    question   TEXT NOT NULL,
    answer     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX asks_recent ON asks (created_at DESC);

-- A transcript removed (a full retry) takes its passages with it: they are built again when
-- the job completes again.
CREATE FUNCTION focusflow_passages_transcript_cleared() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM passages WHERE job_id = NEW.id;
    DELETE FROM passage_jobs WHERE job_id = NEW.id;
    RETURN NEW;
END
$$;

CREATE TRIGGER passages_transcript_cleared AFTER UPDATE OF transcript_path ON jobs
    FOR EACH ROW WHEN (NEW.transcript_path IS NULL AND OLD.transcript_path IS NOT NULL)
    EXECUTE FUNCTION focusflow_passages_transcript_cleared();
