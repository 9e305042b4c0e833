-- Voice in chat: `!voice` turns spoken answers on or off per conversation.
ALTER TABLE "conversations" ADD COLUMN IF NOT EXISTS "voice_replies" boolean DEFAULT false NOT NULL;
