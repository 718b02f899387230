-- Ask (issue 17): transcripts in passages of whole speaker turns, with their times, ranked by
-- FTS5's BM25; optional embedding vectors beside them; the questions people asked.
-- `label` is the speaker's heading in the transcript ("Speaker A", or a caption file's name);
-- `speaker` is how it is shown, with the names people gave (kept in step by the store).
CREATE TABLE passages (
    id        INTEGER PRIMARY KEY,
    job_id    TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    label     TEXT,
    speaker   TEXT,
    start_ms  INTEGER,
    text      TEXT NOT NULL,
    -- Little-endian f32s from EMBEDDINGS_MODEL; NULL until embedded (or without a model).
    embedding BLOB,
    UNIQUE (job_id, seq)
);

-- Porter stemming: a question says "delays" where the meeting said "delayed".
CREATE VIRTUAL TABLE passage_search USING fts5(
    speaker,
    text,
    content = 'passages',
    content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER passages_insert AFTER INSERT ON passages BEGIN
    INSERT INTO passage_search (rowid, speaker, text)
        VALUES (new.id, coalesce(new.speaker, ''), new.text);
END;

CREATE TRIGGER passages_delete AFTER DELETE ON passages BEGIN
    INSERT INTO passage_search (passage_search, rowid, speaker, text)
        VALUES ('delete', old.id, coalesce(old.speaker, ''), old.text);
END;

CREATE TRIGGER passages_update AFTER UPDATE OF speaker, text ON passages BEGIN
    INSERT INTO passage_search (passage_search, rowid, speaker, text)
        VALUES ('delete', old.id, coalesce(old.speaker, ''), old.text);
    INSERT INTO passage_search (rowid, speaker, text)
        VALUES (new.id, coalesce(new.speaker, ''), new.text);
END;

-- The jobs whose passages are built (a job may have none: an empty transcript), so the
-- start-up backfill knows which are left.
CREATE TABLE passage_jobs (
    job_id     TEXT PRIMARY KEY,
    indexed_at INTEGER NOT NULL
);

-- Questions asked and their answers (the answer as JSON, with its citations). `job_id` is
-- set when the question was about one meeting.
CREATE TABLE asks (
    id         TEXT PRIMARY KEY,
    job_id     TEXT,
    question   TEXT NOT NULL,
    answer     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX asks_recent ON asks (created_at DESC);

CREATE TRIGGER jobs_passages_delete AFTER DELETE ON jobs BEGIN
    DELETE FROM passages WHERE job_id = old.id;
    DELETE FROM passage_jobs WHERE job_id = old.id;
    DELETE FROM asks WHERE job_id = old.id;
END;

-- A transcript removed (a full retry) takes its passages with it: they are built again when
-- the job completes again.
CREATE TRIGGER passages_transcript_cleared AFTER UPDATE OF transcript_path ON jobs
    WHEN new.transcript_path IS NULL BEGIN
    DELETE FROM passages WHERE job_id = new.id;
    DELETE FROM passage_jobs WHERE job_id = new.id;
END;
