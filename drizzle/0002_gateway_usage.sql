-- The metered gateway records images and the credits it charged on each usage row.
ALTER TABLE "usage_events" ADD COLUMN "images" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "usage_events" ADD COLUMN "credits_micro" bigint DEFAULT 0 NOT NULL;
