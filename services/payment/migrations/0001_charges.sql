-- Charges: one row per charge attempt that reached a decision. Money is in cents.
-- The full card number is never stored, only its last four digits.
CREATE TABLE charges (
    charge_id    UUID        PRIMARY KEY,
    order_id     UUID        NOT NULL,
    amount_cents BIGINT      NOT NULL CHECK (amount_cents > 0),
    card_last4   TEXT        NOT NULL,
    -- CHARGED: money taken; REFUNDED: taken and given back; DECLINED: never taken.
    status       TEXT        NOT NULL CHECK (status IN ('CHARGED', 'DECLINED', 'REFUNDED')),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    refunded_at  TIMESTAMPTZ,
    CHECK ((status = 'REFUNDED') = (refunded_at IS NOT NULL))
);

-- At most one charge per order ever takes money, whatever idempotency keys the callers use.
-- (The service also serialises work per order; this is the backstop.)
CREATE UNIQUE INDEX charges_one_taking_money_per_order
    ON charges (order_id) WHERE status IN ('CHARGED', 'REFUNDED');

CREATE INDEX charges_by_order ON charges (order_id);

-- Orders voided by a refund: a charge arriving later (a delayed retry) is refused.
CREATE TABLE order_voids (
    order_id       UUID        PRIMARY KEY,
    -- What the voiding refund gave back (0 when there was nothing to refund).
    refunded_cents BIGINT      NOT NULL CHECK (refunded_cents >= 0),
    voided_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
