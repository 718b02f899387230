-- Browser sessions (tower-sessions), as in SQLite's 0007_sessions.sql: each one's form token
-- and waiting flash messages, as JSON, until `expires_at` (ms since the epoch). Every replica
-- on the database sees the same sessions, so consecutive requests may go to different ones.
CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    data       TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
-- Expired sessions are removed, and the ones closest to expiry make room, in this order.
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
