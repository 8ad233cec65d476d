-- The catalog: one row per product, fields as in the shop's catalog CSV.
CREATE TABLE products (
    handle           text PRIMARY KEY,
    title            text NOT NULL,
    category         text NOT NULL,
    department       text NOT NULL,
    price            bigint NOT NULL CHECK (price >= 0),
    stock            integer NOT NULL CHECK (stock >= 0),
    image_url        text NOT NULL DEFAULT '',
    fabric           text NOT NULL DEFAULT '',
    occasion         text NOT NULL DEFAULT '',
    color            text NOT NULL DEFAULT '',
    work_type        text NOT NULL DEFAULT '',
    dispatch_time    text NOT NULL DEFAULT '',
    return_eligible  boolean NOT NULL DEFAULT false,
    description      text NOT NULL DEFAULT '',
    seo_title        text NOT NULL DEFAULT '',
    seo_description  text NOT NULL DEFAULT '',
    hero_prompt      text NOT NULL DEFAULT '',
    detail_prompt    text NOT NULL DEFAULT '',
    lifestyle_prompt text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX products_category_idx ON products (category);

-- Admin actions and failures, newest last.
CREATE TABLE audit_log (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text NOT NULL,
    action  text NOT NULL,
    target  text NOT NULL DEFAULT '',
    outcome text NOT NULL,
    detail  jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_action_idx ON audit_log (action, at);
