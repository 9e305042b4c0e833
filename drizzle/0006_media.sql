-- Stored media (voice replies, generated images): ownership, content type, where the bytes are, expiry.
CREATE TABLE IF NOT EXISTS "media" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid REFERENCES "users"("id") ON DELETE cascade,
	"kind" text NOT NULL,
	"content_type" text NOT NULL,
	"byte_size" bigint NOT NULL,
	"storage_key" text NOT NULL,
	"expires_at" timestamp with time zone,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "media_kind_check" CHECK ("kind" IN ('audio', 'image'))
);--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "media_user_created_idx" ON "media" ("user_id", "created_at");--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "media_expires_idx" ON "media" ("expires_at");
