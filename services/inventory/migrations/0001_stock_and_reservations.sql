-- Stock per SKU. `reserved` units are promised to orders and not yet shipped; what can still be
-- reserved is `on_hand - reserved`. The checks make negative stock impossible, whatever the code.
CREATE TABLE stock (
    sku        TEXT        PRIMARY KEY,
    on_hand    INTEGER     NOT NULL CHECK (on_hand >= 0),
    reserved   INTEGER     NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT stock_reserved_within_on_hand CHECK (reserved <= on_hand)
);

-- One row per order, ever (order_id is unique): its reservation and what became of it.
-- A release that arrives before any reservation leaves a RELEASED tombstone (sku NULL,
-- quantity 0), so a reservation arriving later for that order is refused.
CREATE TABLE reservations (
    reservation_id UUID        PRIMARY KEY,
    order_id       UUID        NOT NULL UNIQUE,
    -- No foreign key: a reservation is claimed (this row) before its stock is looked at.
    sku            TEXT,
    quantity       INTEGER     NOT NULL CHECK (quantity >= 0),
    status         TEXT        NOT NULL CHECK (status IN ('RESERVED', 'RELEASED', 'COMMITTED')),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT reservations_tombstones_hold_nothing
        CHECK (sku IS NOT NULL AND quantity > 0 OR status = 'RELEASED' AND sku IS NULL AND quantity = 0)
);
