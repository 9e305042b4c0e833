-- One-time link codes: the Discord bot's /setup gives a user a short-lived code; the dashboard redeems it for a user API key bound to that user.
CREATE TABLE IF NOT EXISTS "link_codes" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"code_hash" text NOT NULL,
	"user_id" uuid NOT NULL REFERENCES "users"("id") ON DELETE CASCADE,
	"created_by_key_id" uuid REFERENCES "api_keys"("id") ON DELETE SET NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"used_at" timestamp with time zone,
	"api_key_id" uuid REFERENCES "api_keys"("id") ON DELETE SET NULL
);--> statement-breakpoint
CREATE UNIQUE INDEX IF NOT EXISTS "link_codes_code_hash_key" ON "link_codes" USING btree ("code_hash");--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "link_codes_user_id_idx" ON "link_codes" USING btree ("user_id");
