import { ValidationError } from '../../infra/http/errors.js';
import type { ResolvedProviderKey } from '../../modules/identity/key-resolution.js';
import {
  ContentFilteredError,
  GenerationFailedError,
  exchange,
  httpError,
  parseJson,
  parseSize,
  ratioOf,
  unsupported,
  type HttpSettings,
  type ImageModelProvider,
  type ImagePlan,
  type ImageProgress,
  type ImageRequest,
  type ImageStyle,
} from './image-model.js';

/**
 * OpenAI `POST /images/generations` (provider-apis §6): gpt-image-1 always answers base64;
 * dall-e-3 (and dall-e-2) answer URLs valid for an hour, which the job downloads at once.
 */

interface ModelRules {
  sizes: string[];
  maxImages: number;
  qualities: string[];
  /** The quality each Anima style asks for. */
  styleQuality: Record<ImageStyle, string | undefined>;
  formats: string[];
}

const GPT_IMAGE: ModelRules = {
  sizes: ['1024x1024', '1536x1024', '1024x1536', 'auto'],
  maxImages: 10,
  qualities: ['low', 'medium', 'high', 'auto'],
  styleQuality: { fast: 'low', quality: 'medium', pro: 'high' },
  formats: ['png', 'jpeg', 'webp'],
};

const RULES: Record<string, ModelRules> = {
  'dall-e-3': {
    sizes: ['1024x1024', '1792x1024', '1024x1792'],
    maxImages: 1,
    qualities: ['standard', 'hd'],
    styleQuality: { fast: 'standard', quality: 'standard', pro: 'hd' },
    formats: ['png'],
  },
  'dall-e-2': { sizes: ['256x256', '512x512', '1024x1024'], maxImages: 10, qualities: ['standard'], styleQuality: { fast: undefined, quality: undefined, pro: undefined }, formats: ['png'] },
};

function rulesFor(model: string): ModelRules | undefined {
  return model.startsWith('gpt-image-') ? GPT_IMAGE : RULES[model];
}

export function planOpenAi(request: ImageRequest): ImagePlan {
  const model = request.model ?? 'gpt-image-1';
  const rules = rulesFor(model);
  if (!rules) throw new ValidationError('model', `OpenAI image models are gpt-image-1, dall-e-3 and dall-e-2; not ${model}.`);
  const base64Only = rules === GPT_IMAGE;
  if (request.count > rules.maxImages) throw new ValidationError('n', `${model} makes at most ${rules.maxImages} image${rules.maxImages === 1 ? '' : 's'} per request.`);
  let size = request.size;
  if (size === undefined && request.aspectRatio !== undefined) {
    size = rules.sizes.find((candidate) => {
      const parsed = parseSize(candidate);
      return parsed !== undefined && ratioOf(parsed.width, parsed.height) === request.aspectRatio;
    });
    if (size === undefined) throw new ValidationError('aspect_ratio', `${model} has no size with the aspect ratio ${request.aspectRatio}; its sizes are ${rules.sizes.join(', ')}.`);
  }
  size ??= '1024x1024';
  if (!rules.sizes.includes(size)) throw new ValidationError('size', `${model} supports the sizes ${rules.sizes.join(', ')}; not ${size}.`);
  const quality = request.quality ?? rules.styleQuality[request.style];
  if (request.quality !== undefined && !rules.qualities.includes(request.quality)) throw new ValidationError('quality', `${model} supports the qualities ${rules.qualities.join(', ')}.`);
  if (request.openaiStyle !== undefined && model !== 'dall-e-3') throw new ValidationError('style', `vivid and natural are styles of dall-e-3 only; use fast, quality or pro with ${model}.`);
  const body: Record<string, unknown> = { model, prompt: request.prompt, n: request.count, size };
  if (quality !== undefined) body.quality = quality;
  if (request.openaiStyle !== undefined) body.style = request.openaiStyle;
  if (!base64Only) body.response_format = 'url';
  if (request.outputFormat !== undefined) {
    if (!rules.formats.includes(request.outputFormat)) throw new ValidationError('output_format', `${model} makes ${rules.formats.join(', ')} only.`);
    if (base64Only) body.output_format = request.outputFormat;
  }
  const warnings = unsupported('openai', model, [
    ['negative_prompt', request.negativePrompt],
    ['seed', request.seed],
    ['steps', request.steps],
    ['guidance', request.guidance],
  ]);
  const parsed = size === 'auto' ? undefined : parseSize(size);
  return { provider: 'openai', model, count: request.count, body, warnings, width: parsed?.width, height: parsed?.height };
}

interface OpenAiImagesAnswer {
  data?: Array<{ url?: string; b64_json?: string; revised_prompt?: string }>;
  usage?: { input_tokens?: number; output_tokens?: number };
  output_format?: string;
  error?: { message?: string; code?: string | null; type?: string };
}

export class OpenAiImageProvider implements ImageModelProvider {
  constructor(private readonly settings: HttpSettings) {}

  async submit(plan: ImagePlan, key: ResolvedProviderKey, signal?: AbortSignal): Promise<ImageProgress> {
    const { response, bytes } = await exchange(
      'openai',
      this.settings,
      `${this.settings.baseUrl}/images/generations`,
      { method: 'POST', headers: { authorization: `Bearer ${key.apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify(plan.body) },
      signal,
    );
    const body = parseJson(bytes) as OpenAiImagesAnswer | undefined;
    if (!response.ok) {
      if (body?.error?.code === 'content_policy_violation' || body?.error?.type === 'image_generation_user_error') {
        throw new ContentFilteredError('openai', `OpenAI refused the prompt: ${body.error.message ?? 'content policy'}`.slice(0, 500));
      }
      throw httpError('openai', response, body?.error?.message);
    }
    const data = body?.data ?? [];
    if (data.length === 0) throw new GenerationFailedError('openai', 'OpenAI answered without an image.', 200);
    const format = typeof body?.output_format === 'string' ? body.output_format : 'png';
    return {
      state: 'done',
      outputs: data.map((item) => ({
        bytes: item.b64_json !== undefined ? Buffer.from(item.b64_json, 'base64') : undefined,
        contentType: item.b64_json !== undefined ? `image/${format}` : undefined,
        url: item.url,
        revisedPrompt: item.revised_prompt,
      })),
      usage: body?.usage ? { promptTokens: body.usage.input_tokens ?? 0, completionTokens: body.usage.output_tokens ?? 0 } : undefined,
    };
  }

  poll(): Promise<ImageProgress> {
    return Promise.reject(new Error('OpenAI images are synchronous; there is nothing to poll.'));
  }
}
