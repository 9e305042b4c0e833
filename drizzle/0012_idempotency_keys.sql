-- Idempotency-Key on chat, image and speech POSTs: one row per user, route and key (src/modules/idempotency).
CREATE TABLE IF NOT EXISTS "idempotency_keys" (
  "user_id" uuid NOT NULL REFERENCES "users"("id") ON DELETE CASCADE,
  "route" text NOT NULL,
  "key" text NOT NULL,
  "fingerprint" text NOT NULL,
  "state" text DEFAULT 'in_flight' NOT NULL CHECK ("state" IN ('in_flight', 'done')),
  "locked_until" timestamp with time zone NOT NULL,
  "response_status" integer,
  "response_headers" jsonb,
  "response_body" text,
  "response_encoding" text CHECK ("response_encoding" IN ('utf8', 'base64')),
  "created_at" timestamp with time zone DEFAULT now() NOT NULL,
  "expires_at" timestamp with time zone NOT NULL,
  PRIMARY KEY ("user_id", "route", "key")
);--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "idempotency_keys_expires_at_idx" ON "idempotency_keys" ("expires_at");
