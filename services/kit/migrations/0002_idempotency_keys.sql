-- Idempotency keys of HTTP requests: the first request with a key does the work and stores its
-- response; repeats replay it. See `faultline_kit::idempotency`.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope        TEXT        NOT NULL,
    key          TEXT        NOT NULL,
    fingerprint  TEXT        NOT NULL,
    -- NULL while the first request is still in progress.
    status       INTEGER,
    body         JSONB,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at TIMESTAMPTZ,
    PRIMARY KEY (scope, key)
);
