-- The order service's own tables (the kit's `outbox` and `idempotency_keys` live beside them).

-- One row per order; `status` moves PENDING → CONFIRMED | CANCELLED exactly once, in the
-- transaction that also writes the OrderConfirmed / OrderCancelled event to the outbox.
CREATE TABLE orders (
    order_id     UUID        PRIMARY KEY,
    customer_id  TEXT        NOT NULL,
    sku          TEXT        NOT NULL,
    quantity     INTEGER     NOT NULL CHECK (quantity > 0),
    amount_cents BIGINT      NOT NULL CHECK (amount_cents > 0),
    -- Kept so a resumed saga can (re)send the charge; the system only ever sees test cards.
    card         TEXT        NOT NULL,
    status       TEXT        NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'CANCELLED')),
    reason       TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The saga of each order, persisted after every step so a restarted process resumes it.
-- `step` is the next thing to do; DONE means the order reached its final status.
CREATE TABLE sagas (
    order_id         UUID        PRIMARY KEY REFERENCES orders (order_id),
    step             TEXT        NOT NULL
        CHECK (step IN ('RESERVE', 'CHARGE', 'COMMIT', 'REFUND', 'RELEASE', 'DONE')),
    -- Set before the first charge request leaves, so a crash mid-charge still refunds.
    charge_attempted BOOLEAN     NOT NULL DEFAULT false,
    -- While compensating (REFUND, RELEASE): the reason the order will be cancelled with.
    cancel_reason    TEXT
        CHECK (cancel_reason IN ('out_of_stock', 'card_declined', 'payment_unavailable', 'inventory_unavailable')),
    -- Failed attempts of the current step, and the last failure, for operators and checkers.
    attempts         INTEGER     NOT NULL DEFAULT 0,
    last_error       TEXT,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Start-up scans only the unfinished sagas.
CREATE INDEX sagas_unfinished ON sagas (order_id) WHERE step <> 'DONE';
