import { ValidationError } from '../../infra/http/errors.js';
import type { ResolvedProviderKey } from '../../modules/identity/key-resolution.js';
import {
  ContentFilteredError,
  exchange,
  httpError,
  parseJson,
  pickAspectRatio,
  unsupported,
  type HttpSettings,
  type ImageModelProvider,
  type ImageOutput,
  type ImagePlan,
  type ImageProgress,
  type ImageRequest,
  type ImageStyle,
} from './image-model.js';

/**
 * Stability AI Stable Image (provider-apis §6): `POST /v2beta/stable-image/generate/{core|ultra|sd3}`
 * as multipart/form-data with `Accept: image/*`, answering the raw bytes and the headers
 * `finish-reason` (SUCCESS | CONTENT_FILTERED) and `seed`. One image per call, so n images are n calls.
 */

export const STABILITY_ASPECT_RATIOS = ['16:9', '1:1', '21:9', '2:3', '3:2', '4:5', '5:4', '9:16', '9:21'] as const;
const STYLE_MODELS: Record<ImageStyle, string> = { fast: 'core', quality: 'core', pro: 'ultra' };
const MODELS = ['core', 'ultra', 'sd3'];
/** Stability's nominal pixel sizes per aspect ratio (what the API renders). */
const NOMINAL: Record<string, [number, number]> = {
  '16:9': [1344, 768],
  '1:1': [1024, 1024],
  '21:9': [1536, 640],
  '2:3': [832, 1216],
  '3:2': [1216, 832],
  '4:5': [896, 1088],
  '5:4': [1088, 896],
  '9:16': [768, 1344],
  '9:21': [640, 1536],
};

export function planStability(request: ImageRequest): ImagePlan {
  const model = (request.model ?? STYLE_MODELS[request.style]).replace(/^stable-image-/, '');
  if (!MODELS.includes(model)) throw new ValidationError('model', `Stability image models are ${MODELS.join(', ')}; not ${request.model}.`);
  if (request.prompt.length > 10_000) throw new ValidationError('prompt', 'Stability takes prompts of at most 10,000 characters.');
  if (request.count > 4) throw new ValidationError('n', 'At most 4 Stability images per request (each is its own call).');
  const { ratio, warnings } = pickAspectRatio(request, STABILITY_ASPECT_RATIOS, 'Stability', '1:1');
  const body: Record<string, unknown> = { prompt: request.prompt, aspect_ratio: ratio, output_format: request.outputFormat ?? 'png' };
  if (request.negativePrompt !== undefined) body.negative_prompt = request.negativePrompt;
  if (request.seed !== undefined) {
    if (request.seed > 4_294_967_294) throw new ValidationError('seed', 'Stability seeds go from 0 to 4294967294.');
    body.seed = request.seed;
  }
  warnings.push(
    ...unsupported('stability', model, [
      ['steps', request.steps],
      ['guidance', request.guidance],
      ['quality', request.quality],
      ['style (vivid|natural)', request.openaiStyle],
    ]),
  );
  const [width, height] = NOMINAL[ratio] ?? [undefined, undefined];
  return { provider: 'stability', model, count: request.count, body, warnings, width, height };
}

export class StabilityImageProvider implements ImageModelProvider {
  constructor(private readonly settings: HttpSettings) {}

  async submit(plan: ImagePlan, key: ResolvedProviderKey, signal?: AbortSignal): Promise<ImageProgress> {
    const outputs: ImageOutput[] = [];
    for (let index = 0; index < plan.count; index += 1) {
      const form = new FormData();
      for (const [name, value] of Object.entries(plan.body)) {
        // Each further image gets the next seed, so n images differ yet stay reproducible.
        const fieldValue = name === 'seed' && typeof value === 'number' ? value + index : value;
        form.append(name, String(fieldValue));
      }
      const { response, bytes } = await exchange(
        'stability',
        this.settings,
        `${this.settings.baseUrl}/v2beta/stable-image/generate/${plan.model}`,
        { method: 'POST', headers: { authorization: `Bearer ${key.apiKey}`, accept: 'image/*' }, body: form },
        signal,
      );
      if (!response.ok) {
        const error = parseJson(bytes) as { name?: string; errors?: string[] } | undefined;
        const message = error?.errors?.join('; ') ?? error?.name;
        if (response.status === 403 && error?.name === 'content_moderation') throw new ContentFilteredError('stability', `Stability refused the prompt: ${message ?? 'content moderation'}`.slice(0, 500));
        throw httpError('stability', response, message);
      }
      const seedHeader = Number(response.headers.get('seed'));
      outputs.push({
        bytes,
        contentType: (response.headers.get('content-type') ?? '').split(';')[0]?.trim(),
        seed: Number.isFinite(seedHeader) && response.headers.get('seed') !== null ? seedHeader : undefined,
        filtered: (response.headers.get('finish-reason') ?? '').toUpperCase() === 'CONTENT_FILTERED',
      });
    }
    return { state: 'done', outputs };
  }

  poll(): Promise<ImageProgress> {
    return Promise.reject(new Error('Stability images are synchronous; there is nothing to poll.'));
  }
}
