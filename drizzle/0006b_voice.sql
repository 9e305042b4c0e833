-- The voice registry (friendly names over vendor voice ids) and the log of every voice request.
CREATE TABLE IF NOT EXISTS "voices" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"provider" text NOT NULL,
	"provider_voice_id" text NOT NULL,
	"language" text,
	"gender" text,
	"description" text DEFAULT '' NOT NULL,
	"cloned" boolean DEFAULT false NOT NULL,
	"active" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);--> statement-breakpoint
CREATE UNIQUE INDEX IF NOT EXISTS "voices_name_key" ON "voices" ("name");--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "voice_requests" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid REFERENCES "users"("id") ON DELETE cascade,
	"character_id" uuid REFERENCES "characters"("id") ON DELETE set null,
	"kind" text NOT NULL,
	"source" text NOT NULL,
	"provider" text,
	"model" text,
	"voice" text,
	"characters" integer DEFAULT 0 NOT NULL,
	"seconds" double precision DEFAULT 0 NOT NULL,
	"status" text NOT NULL,
	"error_code" text,
	"request_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "voice_requests_status_check" CHECK ("status" IN ('success', 'error', 'quota_exceeded', 'rate_limited'))
);--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "voice_requests_user_created_idx" ON "voice_requests" ("user_id", "created_at");--> statement-breakpoint
ALTER TABLE "characters" ADD COLUMN IF NOT EXISTS "voice_settings" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
-- Seed 003's MiniMax voices (the two moss_audio ids are account voices of that deployment, hence cloned)
-- and ElevenLabs' premade defaults. Operators change them with POST/PATCH /v1/admin/voices.
INSERT INTO "voices" ("name", "provider", "provider_voice_id", "language", "gender", "description", "cloned") VALUES
	('nigerian-male', 'minimax', 'moss_audio_4e6eb029-ab89-11f0-a74c-2a7a0b4baedc', 'en', 'male', 'Deep, authoritative Nigerian English male voice', true),
	('american-male', 'minimax', 'moss_audio_a59cd561-ab87-11f0-a74c-2a7a0b4baedc', 'en', 'male', 'Neutral American English male voice', true),
	('british-female', 'minimax', 'English_compelling_lady1', 'en', 'female', 'Clear, authoritative British English female voice', false),
	('rachel', 'elevenlabs', '21m00Tcm4TlvDq8ikWAM', 'en', 'female', 'Calm young American female narrator (ElevenLabs premade)', false),
	('adam', 'elevenlabs', 'pNInz6obpgDQGcFmaJgB', 'en', 'male', 'Deep middle-aged American male narrator (ElevenLabs premade)', false),
	('sarah', 'elevenlabs', 'EXAVITQu4vr4xnSDxMaL', 'en', 'female', 'Soft young American female, news (ElevenLabs premade)', false),
	('george', 'elevenlabs', 'JBFqnCBsd6RMkjVDRZzb', 'en', 'male', 'Warm middle-aged British male narrator (ElevenLabs premade)', false)
ON CONFLICT ("name") DO NOTHING;
