-- Browser sessions (tower-sessions): each one's form token and waiting flash messages, as JSON,
-- until `expires_at` (ms since the epoch). In the database rather than in memory so that the
-- sessions survive a restart and every process on the database sees the same ones.
CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    data       TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
-- Expired sessions are removed, and the ones closest to expiry make room, in this order.
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
