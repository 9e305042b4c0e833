-- Billing: plans carry every limit and price as data; wallets, an append-only credit ledger and
-- reservations in integer micro-credits (1 credit = 1,000,000 micro); daily usage rolled up at record time.
ALTER TABLE "plans" ADD COLUMN "description" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "plans" ADD COLUMN "credits_per_1k_tokens_micro" bigint DEFAULT 100000 NOT NULL;--> statement-breakpoint
ALTER TABLE "plans" ADD COLUMN "credits_per_image_micro" bigint DEFAULT 1000000 NOT NULL;--> statement-breakpoint
ALTER TABLE "plans" ADD COLUMN "credits_per_audio_second_micro" bigint DEFAULT 10000 NOT NULL;--> statement-breakpoint
ALTER TABLE "plans" ADD COLUMN "concurrent_streams" integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "plans" ADD COLUMN "voice_seconds_per_month" integer DEFAULT 600 NOT NULL;--> statement-breakpoint
ALTER TABLE "plans" ADD COLUMN "images_per_day" integer DEFAULT 5 NOT NULL;--> statement-breakpoint
ALTER TABLE "plans" ADD COLUMN "price_cents" integer;--> statement-breakpoint
ALTER TABLE "plans" ADD COLUMN "currency" text DEFAULT 'usd' NOT NULL;--> statement-breakpoint
ALTER TABLE "plans" ADD COLUMN "public" boolean DEFAULT true NOT NULL;--> statement-breakpoint
ALTER TABLE "plans" ADD COLUMN "sort_order" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "plans" ADD COLUMN "updated_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
INSERT INTO "plans" ("id", "name") VALUES ('free', 'Free'), ('premium', 'Premium'), ('vip', 'VIP'), ('enterprise', 'Enterprise') ON CONFLICT ("id") DO NOTHING;--> statement-breakpoint
UPDATE "plans" SET "description" = 'Try every feature on the platform''s keys, a little each day.', "allows_platform_keys" = true, "daily_credits" = 10, "requests_per_minute" = 5, "credits_per_1k_tokens_micro" = 100000, "credits_per_image_micro" = 1000000, "credits_per_audio_second_micro" = 10000, "concurrent_streams" = 1, "voice_seconds_per_month" = 600, "images_per_day" = 5, "price_cents" = 0, "sort_order" = 0, "features" = "features" || '{"long_term_memory": true, "voice": true, "image_generation": true}'::jsonb WHERE "id" = 'free';--> statement-breakpoint
UPDATE "plans" SET "description" = 'More credits, faster limits, more voice and images.', "allows_platform_keys" = true, "daily_credits" = 100, "requests_per_minute" = 30, "credits_per_1k_tokens_micro" = 70000, "credits_per_image_micro" = 800000, "credits_per_audio_second_micro" = 8000, "concurrent_streams" = 2, "voice_seconds_per_month" = 3600, "images_per_day" = 50, "price_cents" = 999, "sort_order" = 1, "features" = "features" || '{"long_term_memory": true, "voice": true, "image_generation": true}'::jsonb WHERE "id" = 'premium';--> statement-breakpoint
UPDATE "plans" SET "description" = 'For heavy use: the most credits and the loosest limits.', "allows_platform_keys" = true, "daily_credits" = 500, "requests_per_minute" = 100, "credits_per_1k_tokens_micro" = 50000, "credits_per_image_micro" = 600000, "credits_per_audio_second_micro" = 6000, "concurrent_streams" = 5, "voice_seconds_per_month" = 14400, "images_per_day" = 200, "price_cents" = 2999, "sort_order" = 2, "features" = "features" || '{"long_term_memory": true, "voice": true, "image_generation": true}'::jsonb WHERE "id" = 'vip';--> statement-breakpoint
UPDATE "plans" SET "description" = 'Custom limits agreed with us; set per installation by an admin.', "allows_platform_keys" = true, "daily_credits" = 5000, "requests_per_minute" = 1000, "credits_per_1k_tokens_micro" = 30000, "credits_per_image_micro" = 400000, "credits_per_audio_second_micro" = 4000, "concurrent_streams" = 20, "voice_seconds_per_month" = 100000, "images_per_day" = 2000, "price_cents" = NULL, "sort_order" = 3, "features" = "features" || '{"long_term_memory": true, "voice": true, "image_generation": true}'::jsonb WHERE "id" = 'enterprise';--> statement-breakpoint
CREATE TABLE "wallets" (
	"user_id" uuid PRIMARY KEY NOT NULL REFERENCES "users"("id") ON DELETE cascade,
	"balance_micro" bigint DEFAULT 0 NOT NULL CHECK ("balance_micro" >= 0),
	"daily_micro" bigint DEFAULT 0 NOT NULL CHECK ("daily_micro" >= 0),
	"reserved_micro" bigint DEFAULT 0 NOT NULL CHECK ("reserved_micro" >= 0),
	"daily_refreshed_on" date,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);--> statement-breakpoint
CREATE TABLE "credit_ledger" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
	"user_id" uuid NOT NULL REFERENCES "users"("id") ON DELETE cascade,
	"kind" text NOT NULL CHECK ("kind" IN ('grant', 'daily_refresh', 'purchase', 'reserve', 'settle', 'release', 'refund', 'adjustment')),
	"amount_micro" bigint NOT NULL,
	"balance_after_micro" bigint NOT NULL,
	"idempotency_key" text NOT NULL,
	"reservation_id" uuid,
	"reference" text,
	"reason" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);--> statement-breakpoint
CREATE UNIQUE INDEX "credit_ledger_idempotency_key" ON "credit_ledger" ("idempotency_key");--> statement-breakpoint
CREATE INDEX "credit_ledger_user_id_idx" ON "credit_ledger" ("user_id", "id");--> statement-breakpoint
CREATE FUNCTION "credit_ledger_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'credit_ledger is append-only: entries are never changed';
END;
$$;--> statement-breakpoint
CREATE TRIGGER "credit_ledger_no_update" BEFORE UPDATE ON "credit_ledger" FOR EACH ROW EXECUTE FUNCTION "credit_ledger_append_only"();--> statement-breakpoint
CREATE TABLE "credit_reservations" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid NOT NULL REFERENCES "users"("id") ON DELETE cascade,
	"status" text DEFAULT 'held' NOT NULL CHECK ("status" IN ('held', 'settled', 'released')),
	"amount_micro" bigint NOT NULL CHECK ("amount_micro" >= 0),
	"daily_part_micro" bigint DEFAULT 0 NOT NULL,
	"charged_micro" bigint DEFAULT 0 NOT NULL,
	"service" text NOT NULL,
	"provider" text NOT NULL,
	"model" text,
	"idempotency_key" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"ended_at" timestamp with time zone
);--> statement-breakpoint
CREATE UNIQUE INDEX "credit_reservations_idempotency_key" ON "credit_reservations" ("user_id", "idempotency_key");--> statement-breakpoint
CREATE INDEX "credit_reservations_held_idx" ON "credit_reservations" ("expires_at") WHERE "status" = 'held';--> statement-breakpoint
CREATE TABLE "usage_daily" (
	"user_id" uuid NOT NULL REFERENCES "users"("id") ON DELETE cascade,
	"day" date NOT NULL,
	"service" text NOT NULL,
	"paid_by" text NOT NULL,
	"requests" integer DEFAULT 0 NOT NULL,
	"prompt_tokens" bigint DEFAULT 0 NOT NULL,
	"completion_tokens" bigint DEFAULT 0 NOT NULL,
	"characters" bigint DEFAULT 0 NOT NULL,
	"seconds" double precision DEFAULT 0 NOT NULL,
	"images" integer DEFAULT 0 NOT NULL,
	"credits_micro" bigint DEFAULT 0 NOT NULL,
	"cost_usd" double precision DEFAULT 0 NOT NULL,
	CONSTRAINT "usage_daily_pkey" PRIMARY KEY ("user_id", "day", "service", "paid_by")
);--> statement-breakpoint
INSERT INTO "usage_daily" ("user_id", "day", "service", "paid_by", "requests", "prompt_tokens", "completion_tokens", "characters", "seconds", "images", "credits_micro", "cost_usd")
SELECT "user_id", ("created_at" AT TIME ZONE 'UTC')::date, "service", "paid_by", count(*), sum("prompt_tokens"), sum("completion_tokens"), sum("characters"), sum("seconds"), sum("images"), sum("credits_micro"), sum("cost_usd")
FROM "usage_events" WHERE "user_id" IS NOT NULL GROUP BY 1, 2, 3, 4;
