-- One row per order event the service has notified about. The event's id is the primary key,
-- and the row is written in the same transaction as the kit's `processed_events` record, so a
-- redelivered event never notifies twice.
CREATE TABLE IF NOT EXISTS notifications (
    event_id    TEXT        PRIMARY KEY,
    order_id    UUID        NOT NULL,
    type        TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS notifications_by_order ON notifications (order_id, created_at);
