-- Events a consumer has already applied, so a redelivered event has no second effect.
-- See `faultline_kit::idempotency::mark_processed`.
CREATE TABLE IF NOT EXISTS processed_events (
    consumer     TEXT        NOT NULL,
    event_id     TEXT        NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
