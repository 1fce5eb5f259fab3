CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    source TEXT NOT NULL,
    business_key TEXT NOT NULL,
    revision INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    classification TEXT NOT NULL,
    region TEXT,
    correlation_id TEXT NOT NULL,
    business_time TEXT NOT NULL,
    received_at REAL NOT NULL,
    routed INTEGER NOT NULL,
    envelope TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_fact ON messages (type, business_key);
CREATE INDEX IF NOT EXISTS messages_correlation ON messages (correlation_id);
CREATE INDEX IF NOT EXISTS messages_unrouted ON messages (routed) WHERE routed = 0;
CREATE TABLE IF NOT EXISTS ledger (
    type TEXT NOT NULL,
    business_key TEXT NOT NULL,
    revision INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    business_time TEXT NOT NULL,
    message_id TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (type, business_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS suppressions (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    type TEXT NOT NULL,
    business_key TEXT NOT NULL,
    revision INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    source TEXT NOT NULL,
    verdict TEXT NOT NULL,
    original_message_id TEXT,
    received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS suppressions_fact ON suppressions (type, business_key);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL REFERENCES messages (id),
    destination TEXT NOT NULL,
    channel TEXT NOT NULL,
    fact_key TEXT NOT NULL,
    revision INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    lease_owner TEXT,
    lease_expires_at REAL,
    verify_first INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_error_kind TEXT,
    remote_id TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    delivered_at REAL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (destination, state, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_fact ON deliveries (destination, fact_key, revision);
CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries (state);
CREATE INDEX IF NOT EXISTS deliveries_message ON deliveries (message_id);
CREATE TABLE IF NOT EXISTS attempts (
    delivery_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    started_at REAL,
    finished_at REAL NOT NULL,
    outcome TEXT NOT NULL,
    error_kind TEXT,
    error TEXT,
    PRIMARY KEY (delivery_id, attempt)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    position TEXT,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    source TEXT PRIMARY KEY,
    cursor TEXT,
    updated_at REAL NOT NULL
);
