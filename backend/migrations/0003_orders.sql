-- Orders, their lines (a snapshot of title and price), payment and shipment state.
CREATE TABLE orders (
    id                 text PRIMARY KEY,
    status             text NOT NULL,
    payment_mode       text NOT NULL CHECK (payment_mode IN ('online', 'cod')),
    amount_paise       bigint NOT NULL CHECK (amount_paise >= 0),
    currency           text NOT NULL DEFAULT 'INR',
    gateway_order_id   text UNIQUE,
    gateway_payment_id text,
    customer           jsonb NOT NULL,
    shipment           jsonb,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE order_items (
    order_id text NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    handle   text NOT NULL,
    title    text NOT NULL,
    price    bigint NOT NULL,
    quantity integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, handle)
);
