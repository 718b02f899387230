-- The PostgreSQL schema: the same tables and meaning as the SQLite one (migrations/*.sql), in
-- one step. Applied by src/store/postgres/migrations.rs under an advisory lock.

DO $$
BEGIN
    -- Accent folding (search) normalises Unicode, which PostgreSQL does only in UTF8.
    IF current_setting('server_encoding') <> 'UTF8' THEN
        RAISE EXCEPTION 'FocusFlow needs a database in UTF8 (this one is %); create it with ENCODING ''UTF8''',
            current_setting('server_encoding');
    END IF;
END
$$;

-- Jobs, one row each. Paths are relative to the data directory; times are ms since the epoch.
CREATE TABLE jobs (
    id                TEXT PRIMARY KEY,
    url               TEXT NOT NULL,
    resolved_url      TEXT,
    meeting_date      TEXT,
    -- The meeting date (or, without one, the creation time): "newest meeting first".
    sort_ms           BIGINT NOT NULL,
    status            TEXT NOT NULL,
    title             TEXT,
    summary           TEXT,
    summary_path      TEXT,
    transcript_path   TEXT,
    file_path         TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    error             TEXT,
    checkpoint        TEXT,
    attempts          BIGINT NOT NULL DEFAULT 0,
    progress_bytes    BIGINT,
    progress_total    BIGINT,
    transcription_ref TEXT,
    -- When the job last entered the queue: workers take the oldest first.
    queued_at         BIGINT,
    -- Names people gave to the transcript's speakers, as a JSON object {"A": "Ana"}.
    speakers          TEXT,
    -- The prompt template chosen for the job; NULL = the default PROMPT_PATH.
    template          TEXT,
    -- The transcript's text, for search only (the transcript itself is a file).
    transcript_text   TEXT,
    -- Title (A), summary (B) and transcript (D), accents folded; kept by the trigger below.
    search            TSVECTOR NOT NULL DEFAULT ''::tsvector
);
CREATE INDEX jobs_by_meeting ON jobs (sort_ms DESC, id DESC);
CREATE INDEX jobs_waiting ON jobs (queued_at, created_at) WHERE status = 'queued';
CREATE INDEX jobs_search ON jobs USING GIN (search);

-- Log lines. `seq` orders them across all jobs; a line is appended while its job's row is
-- locked, so one job's lines commit in the order of their numbers.
CREATE TABLE job_logs (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id  TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    ts      BIGINT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX job_logs_by_job ON job_logs (job_id, seq);

-- Facts about the store itself, e.g. that the legacy jobs.json was imported.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Webhook events waiting to be delivered, written in the transaction that finishes the job.
CREATE TABLE webhook_outbox (
    delivery    TEXT PRIMARY KEY,
    job_id      TEXT NOT NULL,
    event       TEXT NOT NULL,
    body        BYTEA NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    next_at     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_at, created_at);

-- Search folds accents as SQLite's `remove_diacritics` does: decompose, drop combining marks.
-- `<` and `&` become spaces: the text-search parser would read `<review>` as an HTML tag and
-- `&amp;` as an entity and index neither, where SQLite indexes the words inside.
-- The query's words are folded with focusflow_unaccent alone (they hold no `<` or `&`, and
-- the query's own `<->` must stay).
CREATE FUNCTION focusflow_unaccent(text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN regexp_replace(normalize($1, NFD), '[\u0300-\u036f]', '', 'g');

CREATE FUNCTION focusflow_fold(text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN focusflow_unaccent(translate($1, '<&', '  '));

CREATE FUNCTION focusflow_search_document(title text, summary text, transcript text)
    RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN setweight(to_tsvector('simple', focusflow_fold(coalesce(title, ''))), 'A')
        || setweight(to_tsvector('simple', focusflow_fold(coalesce(summary, ''))), 'B')
        -- A tsvector holds at most 1 MB: a transcript is indexed up to its first million
        -- characters (about twenty hours of talk).
        || setweight(to_tsvector('simple', focusflow_fold(left(coalesce(transcript, ''), 1000000))), 'D');

-- Fires only when a searched column is written, so the frequent progress updates never
-- recompute the document.
CREATE FUNCTION focusflow_jobs_search() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    NEW.search := focusflow_search_document(NEW.title, NEW.summary, NEW.transcript_text);
    RETURN NEW;
END
$$;

-- A transcript whose path is set to nothing (a full retry) stops being found, as with SQLite.
CREATE FUNCTION focusflow_jobs_transcript_cleared() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    NEW.transcript_text := NULL;
    NEW.search := focusflow_search_document(NEW.title, NEW.summary, NULL);
    RETURN NEW;
END
$$;

CREATE TRIGGER jobs_search_insert BEFORE INSERT ON jobs
    FOR EACH ROW EXECUTE FUNCTION focusflow_jobs_search();
CREATE TRIGGER jobs_search_update BEFORE UPDATE OF title, summary, transcript_text ON jobs
    FOR EACH ROW EXECUTE FUNCTION focusflow_jobs_search();
-- Named to fire after jobs_search_update (same-event triggers fire in name order).
CREATE TRIGGER jobs_transcript_cleared BEFORE UPDATE OF transcript_path ON jobs
    FOR EACH ROW WHEN (NEW.transcript_path IS NULL)
    EXECUTE FUNCTION focusflow_jobs_transcript_cleared();
