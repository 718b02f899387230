-- Who works on a job, and until when. A worker claims a job with a lease and renews it while it
-- works; a job whose lease ran out (its process died, or stalled) belongs to nobody and any
-- process takes it over from its checkpoint. Both NULL: nobody holds the job.
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until INTEGER;
-- The soonest lease to run out: when an idle worker looks again.
CREATE INDEX jobs_by_lease ON jobs (lease_until) WHERE lease_until IS NOT NULL;
-- Jobs mid-stage, for taking over the ones nobody holds.
CREATE INDEX jobs_running ON jobs (queued_at)
    WHERE status IN ('resolving', 'downloading', 'transcribing', 'summarizing');
