-- Webhook events waiting to be delivered: written in the same transaction that finishes the
-- job, deleted once the receiver accepts them, so a restart (even kill -9) loses none.
CREATE TABLE webhook_outbox (
    delivery    TEXT PRIMARY KEY,
    job_id      TEXT NOT NULL,
    event       TEXT NOT NULL,
    body        BLOB NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_at);
