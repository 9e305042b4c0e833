/**
 * OpenAI `POST /images/generations` (dall-e-2, dall-e-3, gpt-image-1), mounted by the
 * OpenAI flavour of the chat fake. URLs point back at the fake, which serves real PNG bytes.
 */
import type { FakeContext } from './fake-server.js';
import { estimateTokens, plainObject } from './fake-server.js';
import { colourFor, servedSize, solidPng } from './media.js';

/** OpenAI's error envelope; `code` is a string or null. */
export function openAiErrorBody(message: string, type: string, param: string | null = null, code: string | null = null): unknown {
  return { error: { message, type, param, code } };
}

export interface OpenAiImageSettings {
  /** Prompts containing one of these words (case-insensitive) get `content_policy_violation`. */
  blockedWords: string[];
  /** Longer side of the served PNG; the reported size stays the requested one. Null = full size. */
  servedImageMaxSide: number | null;
}

interface ModelRules {
  sizes: string[];
  maxImages: number;
  qualities?: string[];
  styles?: string[];
  base64Only: boolean;
}

const MODEL_RULES: Record<string, ModelRules> = {
  'dall-e-2': { sizes: ['256x256', '512x512', '1024x1024'], maxImages: 10, base64Only: false },
  'dall-e-3': {
    sizes: ['1024x1024', '1792x1024', '1024x1792'],
    maxImages: 1,
    qualities: ['standard', 'hd'],
    styles: ['vivid', 'natural'],
    base64Only: false,
  },
  'gpt-image-1': {
    sizes: ['1024x1024', '1536x1024', '1024x1536', 'auto'],
    maxImages: 10,
    qualities: ['low', 'medium', 'high', 'auto'],
    base64Only: true,
  },
};

/** Output tokens gpt-image-1 bills for a 1024x1024 image per quality (OpenAI's pricing table). */
const GPT_IMAGE_OUTPUT_TOKENS: Record<string, number> = { low: 272, medium: 1056, high: 4160, auto: 1056 };

function rulesFor(model: string): ModelRules | undefined {
  if (model.startsWith('gpt-image-1')) return MODEL_RULES['gpt-image-1'];
  return MODEL_RULES[model];
}

const invalid = (message: string, param: string | null, code: string | null = 'invalid_value'): unknown =>
  openAiErrorBody(message, 'invalid_request_error', param, code);

export async function handleOpenAiImages(context: FakeContext, settings: OpenAiImageSettings): Promise<void> {
  const body = plainObject(context.request.body);
  const model = typeof body.model === 'string' ? body.model : 'dall-e-2';
  const rules = rulesFor(model);
  if (rules === undefined) {
    await context.json(404, invalid(`The model '${model}' does not exist.`, null, 'model_not_found'));
    return;
  }
  const prompt = body.prompt;
  if (typeof prompt !== 'string' || prompt.length === 0) {
    await context.json(400, invalid("Missing required parameter: 'prompt'.", 'prompt', 'missing_required_parameter'));
    return;
  }
  const count = body.n ?? 1;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > rules.maxImages) {
    const message =
      rules.maxImages === 1
        ? `Invalid 'n': integer above maximum value. Expected a value <= 1, but got ${JSON.stringify(count)} instead.`
        : `Invalid 'n': expected an integer between 1 and ${rules.maxImages}.`;
    await context.json(400, invalid(message, 'n', 'integer_above_max_value'));
    return;
  }
  const size = typeof body.size === 'string' ? body.size : '1024x1024';
  if (!rules.sizes.includes(size)) {
    await context.json(400, invalid(`'${size}' is not one of [${rules.sizes.map((s) => `'${s}'`).join(', ')}] - 'size'`, 'size', null));
    return;
  }
  const quality = typeof body.quality === 'string' ? body.quality : undefined;
  if (quality !== undefined && rules.qualities !== undefined && !rules.qualities.includes(quality)) {
    await context.json(400, invalid(`Invalid value: '${quality}'. Supported values are: ${rules.qualities.map((q) => `'${q}'`).join(', ')}.`, 'quality'));
    return;
  }
  const style = typeof body.style === 'string' ? body.style : undefined;
  if (style !== undefined && (rules.styles === undefined || !rules.styles.includes(style))) {
    await context.json(400, invalid(`Invalid value: '${style}'. Supported values are: 'vivid' and 'natural'.`, 'style'));
    return;
  }
  if (rules.base64Only && body.response_format !== undefined) {
    await context.json(400, invalid("Unknown parameter: 'response_format'.", 'response_format', 'unknown_parameter'));
    return;
  }
  const responseFormat = rules.base64Only ? 'b64_json' : typeof body.response_format === 'string' ? body.response_format : 'url';
  if (responseFormat !== 'url' && responseFormat !== 'b64_json') {
    await context.json(400, invalid(`Invalid value: '${responseFormat}'. Supported values are: 'url' and 'b64_json'.`, 'response_format'));
    return;
  }
  const lowered = prompt.toLowerCase();
  if (settings.blockedWords.some((word) => lowered.includes(word.toLowerCase()))) {
    await context.json(
      400,
      openAiErrorBody(
        'Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.',
        'image_generation_user_error',
        null,
        'content_policy_violation',
      ),
    );
    return;
  }

  const [nominalWidth, nominalHeight] = (size === 'auto' ? '1024x1024' : size).split('x').map(Number) as [number, number];
  const served = servedSize(nominalWidth, nominalHeight, settings.servedImageMaxSide ?? undefined);
  const data: Record<string, unknown>[] = [];
  for (let index = 0; index < count; index += 1) {
    const png = solidPng(served.width, served.height, colourFor(`${prompt}#${index}`));
    const item: Record<string, unknown> =
      responseFormat === 'url' ? { url: context.storeFile(png, 'image/png', 'png') } : { b64_json: png.toString('base64') };
    if (model === 'dall-e-3') item.revised_prompt = `A detailed rendering of: ${prompt}`;
    data.push(item);
  }
  context.request.meta.model = model;
  const response: Record<string, unknown> = { created: Math.floor(Date.now() / 1000), data };
  if (rules.base64Only) {
    const textTokens = estimateTokens(prompt);
    const outputTokens = (GPT_IMAGE_OUTPUT_TOKENS[quality ?? 'auto'] ?? 1056) * count;
    Object.assign(response, {
      background: typeof body.background === 'string' ? body.background : 'opaque',
      // The fake always serves PNG bytes, so it reports png whatever was asked.
      output_format: 'png',
      quality: quality === undefined || quality === 'auto' ? 'medium' : quality,
      size: size === 'auto' ? '1024x1024' : size,
      usage: {
        input_tokens: textTokens,
        output_tokens: outputTokens,
        total_tokens: textTokens + outputTokens,
        input_tokens_details: { text_tokens: textTokens, image_tokens: 0 },
      },
    });
  }
  await context.json(200, response);
}
