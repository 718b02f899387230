-- Jobs, one row each. Paths are relative to the data directory.
CREATE TABLE jobs (
    id                TEXT PRIMARY KEY NOT NULL,
    url               TEXT NOT NULL,
    resolved_url      TEXT,
    meeting_date      TEXT,
    -- The meeting date (or, without one, the creation time) in ms: "newest meeting first".
    sort_ms           INTEGER NOT NULL,
    status            TEXT NOT NULL,
    title             TEXT,
    summary           TEXT,
    summary_path      TEXT,
    transcript_path   TEXT,
    file_path         TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    error             TEXT,
    checkpoint        TEXT,
    attempts          INTEGER NOT NULL DEFAULT 0,
    progress_bytes    INTEGER,
    progress_total    INTEGER,
    transcription_ref TEXT,
    -- When the job last entered the queue: workers take the oldest first.
    queued_at         INTEGER
);
CREATE INDEX jobs_by_meeting ON jobs (sort_ms DESC, id DESC);
CREATE INDEX jobs_waiting ON jobs (queued_at) WHERE status = 'queued';

-- Log lines: appending one costs the same however many jobs the store holds.
CREATE TABLE job_logs (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id  TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    ts      INTEGER NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX job_logs_by_job ON job_logs (job_id, seq);

-- Facts about the store itself, e.g. that the legacy jobs.json was imported.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
