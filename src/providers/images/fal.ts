import { ValidationError } from '../../infra/http/errors.js';
import type { ResolvedProviderKey } from '../../modules/identity/key-resolution.js';
import { ProviderCallError } from '../chat/provider-error.js';
import {
  GenerationFailedError,
  exchange,
  httpError,
  parseJson,
  parseSize,
  unsupported,
  type HttpSettings,
  type ImageModelProvider,
  type ImageOutput,
  type ImagePlan,
  type ImageProgress,
  type ImageRequest,
  type ImageStyle,
  type ImageTask,
} from './image-model.js';

/**
 * fal.ai Flux through the queue API (provider-apis §4): submit to `FAL_QUEUE_BASE_URL/<model>`,
 * follow the absolute `status_url` (202 while queued or running, 200 when done) and fetch
 * `response_url`; images come back as CDN URLs the job downloads. Auth `Key <id>:<secret>`.
 */

export const FAL_STYLE_MODELS: Record<ImageStyle, string> = {
  fast: 'fal-ai/flux/schnell',
  quality: 'fal-ai/flux/dev',
  // fal's FLUX1.1 [pro]; `fal-ai/flux/pro` is not an endpoint of fal's.
  pro: 'fal-ai/flux-pro/v1.1',
};

const PRESETS: Record<string, string> = {
  '1:1': 'square_hd',
  '4:3': 'landscape_4_3',
  '3:4': 'portrait_4_3',
  '16:9': 'landscape_16_9',
  '9:16': 'portrait_16_9',
};
const PRESET_SIZES: Record<string, [number, number]> = {
  square_hd: [1024, 1024],
  landscape_4_3: [1024, 768],
  portrait_4_3: [768, 1024],
  landscape_16_9: [1024, 576],
  portrait_16_9: [576, 1024],
};

export function planFal(request: ImageRequest): ImagePlan {
  const model = request.model ?? FAL_STYLE_MODELS[request.style];
  if (!/^[\w.-]+\/[\w.-]+(\/[\w.-]+)*$/.test(model)) throw new ValidationError('model', `"${model}" is not a fal model id (e.g. fal-ai/flux/dev).`);
  if (request.count > 4) throw new ValidationError('n', 'fal Flux makes at most 4 images per request.');
  const schnell = model.includes('schnell');
  const pro = model.includes('flux-pro');
  const body: Record<string, unknown> = { prompt: request.prompt, num_images: request.count, enable_safety_checker: true };
  let width: number | undefined = 1024;
  let height: number | undefined = 1024;
  if (request.size !== undefined) {
    const size = parseSize(request.size);
    if (!size || size.width < 256 || size.height < 256 || size.width > 2048 || size.height > 2048) {
      throw new ValidationError('size', 'fal Flux takes sizes from 256x256 to 2048x2048 (e.g. 1024x768).');
    }
    ({ width, height } = size);
    body.image_size = { width, height };
  } else if (request.aspectRatio !== undefined) {
    const preset = PRESETS[request.aspectRatio];
    if (!preset) throw new ValidationError('aspect_ratio', `fal Flux supports the aspect ratios ${Object.keys(PRESETS).join(', ')}; not ${request.aspectRatio}.`);
    body.image_size = preset;
    [width, height] = PRESET_SIZES[preset]!;
  } else {
    body.image_size = 'square_hd';
  }
  if (request.seed !== undefined) body.seed = request.seed;
  const warnings = unsupported('fal', model, [['negative_prompt', request.negativePrompt], ['quality', request.quality], ['style (vivid|natural)', request.openaiStyle]]);
  if (request.steps !== undefined) {
    const maxSteps = schnell ? 12 : 50;
    if (pro) warnings.push(...unsupported('fal', model, [['steps', request.steps]]));
    else if (request.steps < 1 || request.steps > maxSteps) throw new ValidationError('steps', `${model} takes 1 to ${maxSteps} steps.`);
    else body.num_inference_steps = request.steps;
  }
  if (request.guidance !== undefined) {
    if (schnell || pro) warnings.push(...unsupported('fal', model, [['guidance', request.guidance]]));
    else if (request.guidance < 1 || request.guidance > 20) throw new ValidationError('guidance', `${model} takes a guidance scale from 1 to 20.`);
    else body.guidance_scale = request.guidance;
  }
  if (request.outputFormat !== undefined) {
    if (request.outputFormat === 'webp') throw new ValidationError('output_format', 'fal Flux makes jpeg or png, not webp.');
    body.output_format = request.outputFormat;
  }
  return { provider: 'fal', model, count: request.count, body, warnings, width, height };
}

interface FalQueueAnswer {
  status?: string;
  request_id?: string;
  status_url?: string;
  response_url?: string;
  cancel_url?: string;
  detail?: unknown;
}

interface FalOutput {
  images?: Array<{ url?: string; content_type?: string; width?: number; height?: number }>;
  seed?: number;
  has_nsfw_concepts?: boolean[];
  detail?: unknown;
}

/** fal's `detail`: a string, or FastAPI's list of {loc, msg}. */
export function falDetail(body: unknown): string | undefined {
  const detail = (body as { detail?: unknown } | undefined)?.detail;
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((item) => {
        const entry = item as { loc?: unknown[]; msg?: string };
        return `${(entry.loc ?? []).filter((part) => part !== 'body').join('.')}: ${entry.msg ?? ''}`;
      })
      .join('; ');
  }
  return undefined;
}

export class FalImageProvider implements ImageModelProvider {
  constructor(private readonly settings: HttpSettings & { queueBaseUrl: string }) {}

  private headers(key: ResolvedProviderKey): Record<string, string> {
    return { authorization: `Key ${key.apiKey}`, 'content-type': 'application/json', accept: 'application/json' };
  }

  /** Our key goes only to fal's own queue host: a status URL pointing elsewhere is refused. */
  private checkedUrl(value: unknown, name: string): string {
    const queueOrigin = new URL(this.settings.queueBaseUrl).origin;
    if (typeof value !== 'string') throw new ProviderCallError('fal', 'invalid_request', `fal's queue answer has no ${name}.`);
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new ProviderCallError('fal', 'invalid_request', `fal's ${name} is not a URL.`);
    }
    if (url.origin !== queueOrigin) throw new ProviderCallError('fal', 'invalid_request', `fal's ${name} points outside its queue host (${url.origin}); not followed.`);
    return url.toString();
  }

  async submit(plan: ImagePlan, key: ResolvedProviderKey, signal?: AbortSignal): Promise<ImageProgress> {
    const { response, bytes } = await exchange('fal', this.settings, `${this.settings.queueBaseUrl}/${plan.model}`, { method: 'POST', headers: this.headers(key), body: JSON.stringify(plan.body) }, signal);
    const body = parseJson(bytes) as FalQueueAnswer | undefined;
    if (!response.ok) throw httpError('fal', response, falDetail(body));
    const task: ImageTask = {
      requestId: body?.request_id ?? null,
      statusUrl: this.checkedUrl(body?.status_url, 'status_url'),
      responseUrl: this.checkedUrl(body?.response_url, 'response_url'),
      cancelUrl: body?.cancel_url !== undefined ? this.checkedUrl(body.cancel_url, 'cancel_url') : null,
    };
    return { state: 'pending', task };
  }

  async poll(task: ImageTask, key: ResolvedProviderKey, signal?: AbortSignal): Promise<ImageProgress> {
    const statusUrl = this.checkedUrl(task.statusUrl, 'status_url');
    const { response, bytes } = await exchange('fal', this.settings, statusUrl, { method: 'GET', headers: this.headers(key) }, signal);
    const status = parseJson(bytes) as FalQueueAnswer | undefined;
    if (response.status === 202 || (response.ok && status?.status !== 'COMPLETED')) return { state: 'pending', task };
    if (!response.ok) throw httpError('fal', response, falDetail(status));
    const result = await exchange('fal', this.settings, this.checkedUrl(task.responseUrl, 'response_url'), { method: 'GET', headers: this.headers(key) }, signal);
    const output = parseJson(result.bytes) as FalOutput | undefined;
    if (!result.response.ok) {
      if (result.response.status === 401 || result.response.status === 403 || result.response.status === 429) throw httpError('fal', result.response, falDetail(output));
      throw new GenerationFailedError('fal', `fal could not make the image: ${falDetail(output) ?? `HTTP ${result.response.status}`}`.slice(0, 500), result.response.status);
    }
    const images = output?.images ?? [];
    if (images.length === 0) throw new GenerationFailedError('fal', 'fal finished without an image.', 200);
    const outputs: ImageOutput[] = images.map((image, index) => ({
      url: image.url,
      contentType: image.content_type,
      seed: output?.seed,
      filtered: output?.has_nsfw_concepts?.[index] === true,
    }));
    return { state: 'done', outputs };
  }

  async cancel(task: ImageTask, key: ResolvedProviderKey): Promise<void> {
    if (typeof task.cancelUrl !== 'string') return;
    await exchange('fal', this.settings, this.checkedUrl(task.cancelUrl, 'cancel_url'), { method: 'PUT', headers: this.headers(key) }, undefined).catch(() => undefined);
  }
}
