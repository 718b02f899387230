-- Full-text search over titles, summaries and transcripts. The FTS row of a job has the job's
-- rowid, so keeping it in step is an indexed update. Titles and summaries follow the jobs table
-- by trigger; transcripts (kept as files) are written by the store when a transcript is saved.
CREATE VIRTUAL TABLE job_search USING fts5(
    title,
    summary,
    transcript,
    tokenize = 'unicode61 remove_diacritics 2'
);

INSERT INTO job_search (rowid, title, summary, transcript)
    SELECT rowid, coalesce(title, ''), coalesce(summary, ''), '' FROM jobs;

CREATE TRIGGER job_search_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO job_search (rowid, title, summary, transcript)
        VALUES (new.rowid, coalesce(new.title, ''), coalesce(new.summary, ''), '');
END;

CREATE TRIGGER job_search_text AFTER UPDATE OF title, summary ON jobs BEGIN
    UPDATE job_search
        SET title = coalesce(new.title, ''), summary = coalesce(new.summary, '')
        WHERE rowid = new.rowid;
END;

CREATE TRIGGER job_search_transcript_cleared AFTER UPDATE OF transcript_path ON jobs
    WHEN new.transcript_path IS NULL BEGIN
    UPDATE job_search SET transcript = '' WHERE rowid = new.rowid;
END;

CREATE TRIGGER job_search_delete AFTER DELETE ON jobs BEGIN
    DELETE FROM job_search WHERE rowid = old.rowid;
END;
