import { z } from 'zod';
import { SPEECH_FORMATS } from '../../providers/speech/index.js';
import type { VoiceRequestRow, VoiceRow } from './tables.js';

export const SPEECH_PROVIDERS = ['elevenlabs', 'minimax'] as const;

export const voiceSchema = z.object({
  id: z.string(),
  name: z.string(),
  provider: z.string(),
  provider_voice_id: z.string(),
  language: z.string().nullable(),
  gender: z.string().nullable(),
  description: z.string(),
  cloned: z.boolean(),
  active: z.boolean(),
  created_at: z.string(),
  updated_at: z.string(),
});

export const voiceQuerySchema = z.object({
  language: z.string().max(20).optional(),
  gender: z.string().max(20).optional(),
  provider: z.enum(SPEECH_PROVIDERS).optional(),
});

const voiceNameSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lower-case letters, digits and dashes, 1-63 characters');

export const voiceCreateSchema = z.object({
  name: voiceNameSchema,
  provider: z.enum(SPEECH_PROVIDERS),
  provider_voice_id: z.string().trim().min(1).max(200),
  language: z.string().max(20).nullable().optional(),
  gender: z.string().max(20).nullable().optional(),
  description: z.string().max(2000).optional(),
  cloned: z.boolean().optional(),
  active: z.boolean().optional(),
});

export const voicePatchSchema = voiceCreateSchema.partial();

export function presentVoice(row: VoiceRow): z.infer<typeof voiceSchema> {
  return {
    id: row.id,
    name: row.name,
    provider: row.provider,
    provider_voice_id: row.providerVoiceId,
    language: row.language,
    gender: row.gender,
    description: row.description,
    cloned: row.cloned,
    active: row.active,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

export const ttsBodySchema = z.object({
  text: z.string().max(100_000),
  voice: z.string().trim().min(1).max(200).describe('A name from GET /v1/voices, or a vendor voice id (with provider)'),
  provider: z.enum(SPEECH_PROVIDERS).optional(),
  model: z.string().trim().min(1).max(200).optional(),
  format: z.enum(SPEECH_FORMATS).default('mp3').describe('mp3 (audio/mpeg), wav, or pcm (16-bit mono 24 kHz)'),
  speed: z.number().min(0.5).max(2).optional(),
  stream: z.boolean().default(false).describe('Chunked audio as it is produced'),
});

export const characterVoiceBodySchema = z.object({
  text: z.string().max(100_000),
  format: z.enum(SPEECH_FORMATS).default('mp3'),
  stream: z.boolean().default(false),
});

export const speechJsonSchema = z.object({
  audio_base64: z.string(),
  content_type: z.string(),
  format: z.enum(SPEECH_FORMATS),
  provider: z.string(),
  model: z.string(),
  voice: z.string(),
  characters: z.number().int(),
  seconds: z.number(),
  credits_charged: z.number().describe('credits (not micro-credits); 0 when your own key paid'),
});

export const voiceRequestSchema = z.object({
  id: z.string(),
  kind: z.enum(['speech', 'transcription']),
  source: z.string(),
  provider: z.string().nullable(),
  model: z.string().nullable(),
  voice: z.string().nullable(),
  character_id: z.string().nullable(),
  characters: z.number().int(),
  seconds: z.number(),
  status: z.enum(['success', 'error', 'quota_exceeded', 'rate_limited']),
  error_code: z.string().nullable(),
  created_at: z.string(),
});

export function presentVoiceRequest(row: VoiceRequestRow): z.infer<typeof voiceRequestSchema> {
  return {
    id: row.id,
    kind: row.kind,
    source: row.source,
    provider: row.provider,
    model: row.model,
    voice: row.voice,
    character_id: row.characterId,
    characters: row.characters,
    seconds: row.seconds,
    status: row.status,
    error_code: row.errorCode,
    created_at: row.createdAt.toISOString(),
  };
}
