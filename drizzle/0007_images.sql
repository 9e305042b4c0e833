-- Generated images (issue 12): one row per image; bytes live in stored media.
CREATE TABLE IF NOT EXISTS "generated_images" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid NOT NULL REFERENCES "users"("id") ON DELETE cascade,
	"generation_id" uuid NOT NULL,
	"position" integer DEFAULT 0 NOT NULL,
	"character_id" uuid REFERENCES "characters"("id") ON DELETE set null,
	"status" text DEFAULT 'pending' NOT NULL,
	"provider" text NOT NULL,
	"model" text NOT NULL,
	"style" text,
	"prompt" text NOT NULL,
	"negative_prompt" text,
	"revised_prompt" text,
	"parameters" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"seed" bigint,
	"width" integer,
	"height" integer,
	"byte_size" integer,
	"content_type" text,
	"media_id" uuid,
	"title" text,
	"favorite" boolean DEFAULT false NOT NULL,
	"cost_usd" double precision DEFAULT 0 NOT NULL,
	"credits_micro" bigint DEFAULT 0 NOT NULL,
	"paid_by" text,
	"provider_task" jsonb,
	"error_code" text,
	"error_message" text,
	"error_status" integer,
	"request_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"completed_at" timestamp with time zone
);--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "generated_images_user_created_idx" ON "generated_images" ("user_id", "created_at" DESC, "id" DESC);--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "generated_images_user_favorite_idx" ON "generated_images" ("user_id", "created_at" DESC) WHERE "favorite";--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "generated_images_generation_idx" ON "generated_images" ("generation_id", "position");
