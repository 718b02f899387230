-- Who works on a job, and until when (ms since the epoch), as in SQLite's 0005_job_leases.sql.
-- A worker claims a job with a lease and renews it while it works; a job whose lease ran out
-- belongs to nobody and any process takes it over from its checkpoint. Both NULL: nobody.
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until BIGINT;
-- The soonest lease to run out: when an idle worker looks again.
CREATE INDEX jobs_by_lease ON jobs (lease_until) WHERE lease_until IS NOT NULL;
-- Jobs mid-stage, for taking over the ones nobody holds.
CREATE INDEX jobs_running ON jobs (queued_at, created_at)
    WHERE status IN ('resolving', 'downloading', 'transcribing', 'summarizing');
