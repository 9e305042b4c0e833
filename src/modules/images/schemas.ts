import { z } from 'zod';
import { IMAGE_PROVIDERS } from '../../providers/images/index.js';
import type { GeneratedImageRow } from './tables.js';

/**
 * POST /v1/images/generations: Anima's one request shape, which is also OpenAI's (the OpenAI SDK's
 * `images.generate` works unchanged: `style` vivid|natural and `response_format` are OpenAI's, and
 * fields only OpenAI knows are accepted and ignored where they mean nothing).
 */
export const generationBodySchema = z.object({
  prompt: z.string().max(100_000).describe('What to draw (at most 4,000 characters once trimmed)'),
  provider: z.enum(IMAGE_PROVIDERS).optional().describe('fal | openai | stability | kie; default: the model’s provider, else IMAGE_DEFAULT_PROVIDER, else the first with a usable key'),
  model: z.string().min(1).max(200).optional().describe('The vendor’s model id (fal-ai/flux/dev, gpt-image-1, dall-e-3, core, ultra, flux-kontext-pro…); default: the style’s model'),
  style: z.enum(['fast', 'quality', 'pro', 'vivid', 'natural']).optional().describe('fast | quality | pro (Anima: picks the model or quality); vivid | natural are dall-e-3’s own'),
  size: z
    .string()
    .regex(/^(\d{2,5}x\d{2,5}|auto)$/, 'size looks like 1024x768')
    .optional()
    .describe('WxH; providers that take an aspect ratio get the reduced ratio (with a warning)'),
  aspect_ratio: z.string().regex(/^\d{1,2}:\d{1,2}$/, 'aspect_ratio looks like 16:9').optional(),
  n: z.number().int().min(1).max(10).optional().default(1),
  negative_prompt: z.string().max(4000).optional(),
  seed: z.number().int().min(0).max(4_294_967_294).optional(),
  steps: z.number().int().min(1).max(150).optional(),
  guidance: z.number().min(0).max(50).optional(),
  output_format: z.enum(['png', 'jpeg', 'webp']).optional(),
  quality: z.enum(['standard', 'hd', 'low', 'medium', 'high', 'auto']).optional().describe('OpenAI’s quality; Anima’s style picks one when absent'),
  response_format: z.enum(['url', 'b64_json']).optional().default('url'),
  character: z.string().min(1).max(100).optional().describe('A character (id or slug) the image belongs to in the gallery'),
  async: z.boolean().optional().default(false).describe('Answer 202 at once instead of waiting for the images'),
  user: z.string().max(200).optional().describe('OpenAI’s end-user tag; ignored (Anima acts for the authenticated user)'),
});

export type GenerationBody = z.infer<typeof generationBodySchema>;

const imageErrorSchema = z.object({ code: z.string(), message: z.string(), status: z.number().int() });

export const imageSchema = z.object({
  id: z.string(),
  object: z.literal('image'),
  generation_id: z.string(),
  status: z.enum(['pending', 'running', 'succeeded', 'failed']),
  provider: z.string(),
  model: z.string(),
  style: z.string().nullable(),
  prompt: z.string(),
  negative_prompt: z.string().nullable(),
  revised_prompt: z.string().nullable(),
  parameters: z.record(z.string(), z.unknown()),
  warnings: z.array(z.string()),
  seed: z.number().nullable(),
  width: z.number().nullable(),
  height: z.number().nullable(),
  bytes: z.number().nullable(),
  content_type: z.string().nullable(),
  url: z.string().nullable().describe('A signed URL anyone may fetch until it expires (succeeded images)'),
  content_url: z.string().describe('GET this with your credentials for the bytes'),
  title: z.string().nullable(),
  favorite: z.boolean(),
  character_id: z.string().nullable(),
  cost_usd: z.number(),
  credits_charged: z.number(),
  paid_by: z.enum(['user', 'platform']).nullable(),
  error: imageErrorSchema.nullable(),
  created_at: z.string(),
  completed_at: z.string().nullable(),
});

export type ImageView = z.infer<typeof imageSchema>;

export function presentImage(row: GeneratedImageRow, url: string | undefined): ImageView {
  const warnings = Array.isArray(row.parameters.warnings) ? (row.parameters.warnings as string[]) : [];
  return {
    id: row.id,
    object: 'image',
    generation_id: row.generationId,
    status: row.status,
    provider: row.provider,
    model: row.model,
    style: row.style,
    prompt: row.prompt,
    negative_prompt: row.negativePrompt,
    revised_prompt: row.revisedPrompt,
    parameters: (row.parameters.requested as Record<string, unknown> | undefined) ?? {},
    warnings,
    seed: row.seed,
    width: row.width,
    height: row.height,
    bytes: row.byteSize,
    content_type: row.contentType,
    url: url ?? null,
    content_url: `/v1/images/${row.id}/content`,
    title: row.title,
    favorite: row.favorite,
    character_id: row.characterId,
    cost_usd: row.costUsd,
    credits_charged: row.creditsMicro / 1_000_000,
    paid_by: row.paidBy,
    error: row.status === 'failed' ? { code: row.errorCode ?? 'generation_failed', message: row.errorMessage ?? '', status: row.errorStatus ?? 502 } : null,
    created_at: row.createdAt.toISOString(),
    completed_at: row.completedAt?.toISOString() ?? null,
  };
}

export const generationResponseSchema = z.object({
  created: z.number().int(),
  data: z.array(z.object({ url: z.string().optional(), b64_json: z.string().optional(), revised_prompt: z.string().optional(), id: z.string() })),
  id: z.string().describe('The generation id'),
  status: z.enum(['pending', 'succeeded', 'failed', 'partial']),
  provider: z.string(),
  model: z.string(),
  warnings: z.array(z.string()),
  images: z.array(imageSchema),
});

export const listQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(200).optional(),
  favorite: z.enum(['true', 'false']).optional(),
  character: z.string().min(1).max(100).optional().describe('Only images made with this character (id or slug)'),
  status: z.enum(['pending', 'running', 'succeeded', 'failed']).optional(),
});

export const imageListSchema = z.object({ object: z.literal('list'), data: z.array(imageSchema), next_cursor: z.string().nullable() });

export const patchBodySchema = z
  .object({ favorite: z.boolean().optional(), title: z.string().max(200).nullable().optional() })
  .refine((body) => body.favorite !== undefined || body.title !== undefined, 'Send favorite or title.');

export const contentQuerySchema = z.object({ download: z.enum(['1', 'true', '0', 'false']).optional() });

export const describeBodySchema = z
  .object({
    image_url: z.string().min(1).max(8192).optional().describe('http(s) URL (fetched SSRF-safely) or a data: URL'),
    image_base64: z.string().min(1).optional(),
    mime_type: z.string().max(100).optional(),
    prompt: z.string().min(1).max(4000).optional(),
  })
  .refine((body) => (body.image_url === undefined) !== (body.image_base64 === undefined), { message: 'Send image_url or image_base64 (with mime_type), not both.', path: ['image_url'] });

export const describeResponseSchema = z.object({
  description: z.string(),
  provider: z.string(),
  model: z.string(),
  content_type: z.string(),
  width: z.number(),
  height: z.number(),
  usage: z.object({ prompt_tokens: z.number(), completion_tokens: z.number() }),
});
