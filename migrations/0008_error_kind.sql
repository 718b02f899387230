-- Why a job failed, beside its error text: one of the names of `jobs::ErrorKind`
-- (`not_audio`, `provider_auth`, …). The job page's hint follows from it. Jobs that failed
-- before this column are read by their error text instead (`Job::failure_kind`).
ALTER TABLE jobs ADD COLUMN error_kind TEXT;
