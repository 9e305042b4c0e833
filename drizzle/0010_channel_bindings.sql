-- Channel bindings: which characters answer in a Discord channel, category or server (the bot reads them).
CREATE TABLE IF NOT EXISTS "channel_bindings" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"platform" text NOT NULL,
	"guild_id" text NOT NULL,
	"channel_id" text,
	"category_id" text,
	"character_id" uuid NOT NULL REFERENCES "characters"("id") ON DELETE CASCADE,
	"triggers" jsonb NOT NULL,
	"free_will" jsonb NOT NULL,
	"voice_replies" boolean DEFAULT false NOT NULL,
	"created_by_user_id" uuid REFERENCES "users"("id") ON DELETE SET NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "channel_bindings_one_place" CHECK ("channel_id" IS NULL OR "category_id" IS NULL)
);--> statement-breakpoint
CREATE UNIQUE INDEX IF NOT EXISTS "channel_bindings_place_character_idx" ON "channel_bindings" USING btree ("platform","guild_id",coalesce("channel_id", ''),coalesce("category_id", ''),"character_id");--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "channel_bindings_guild_idx" ON "channel_bindings" USING btree ("platform","guild_id");
