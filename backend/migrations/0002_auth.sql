-- One-time passwords (hashed) and the sessions they open (token hashed).
CREATE TABLE otp_codes (
    id          bigserial PRIMARY KEY,
    destination text NOT NULL,
    code_hash   text NOT NULL,
    expires_at  timestamptz NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    consumed_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX otp_codes_destination_idx ON otp_codes (destination, created_at DESC);

CREATE TABLE sessions (
    token_hash text PRIMARY KEY,
    subject    text NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
