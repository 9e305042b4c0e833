-- Memory formation: one run at a time per conversation and speaker (a lease), and where it stands.
CREATE TABLE IF NOT EXISTS "memory_formation_state" (
  "conversation_id" uuid NOT NULL REFERENCES "conversations"("id") ON DELETE CASCADE,
  "user_id" uuid NOT NULL REFERENCES "users"("id") ON DELETE CASCADE,
  "formed_until" timestamp with time zone,
  "locked_until" timestamp with time zone,
  "lock_token" text,
  "updated_at" timestamp with time zone DEFAULT now() NOT NULL,
  PRIMARY KEY ("conversation_id", "user_id")
);--> statement-breakpoint
-- Memories carry the caller's metadata and an external id, unique per character and scope.
ALTER TABLE "memories" ADD COLUMN IF NOT EXISTS "metadata" jsonb;--> statement-breakpoint
ALTER TABLE "memories" ADD COLUMN IF NOT EXISTS "external_id" text;--> statement-breakpoint
CREATE UNIQUE INDEX IF NOT EXISTS "memories_external_id_idx" ON "memories" ("character_id", "scope", "user_id", "guild_id", "external_id") NULLS NOT DISTINCT WHERE "external_id" IS NOT NULL;
