import { ValidationError } from '../../infra/http/errors.js';
import type { ResolvedProviderKey } from '../../modules/identity/key-resolution.js';
import { ProviderCallError, kindForStatus } from '../chat/provider-error.js';
import {
  ContentFilteredError,
  GenerationFailedError,
  exchange,
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
  type ImageTask,
} from './image-model.js';

/**
 * KIE.ai Flux Kontext (provider-apis §8): `POST /api/v1/flux/kontext/generate` → a taskId, then
 * `GET /api/v1/flux/kontext/record-info?taskId=` until successFlag is 1 (or 2/3: failed). Every
 * answer is an envelope `{code, msg|message, data}` whose `code` carries the error, also inside
 * HTTP 200. One image per task, so n images are n tasks.
 */

export const KIE_ASPECT_RATIOS = ['21:9', '16:9', '4:3', '1:1', '3:4', '9:16', '16:21'] as const;
const STYLE_MODELS: Record<ImageStyle, string> = { fast: 'flux-kontext-pro', quality: 'flux-kontext-pro', pro: 'flux-kontext-max' };
const MODELS = ['flux-kontext-pro', 'flux-kontext-max'];

export function planKie(request: ImageRequest): ImagePlan {
  const model = request.model ?? STYLE_MODELS[request.style];
  if (!MODELS.includes(model)) throw new ValidationError('model', `KIE Flux Kontext models are ${MODELS.join(', ')}; not ${model}.`);
  if (request.count > 4) throw new ValidationError('n', 'At most 4 KIE images per request (each is its own task).');
  const { ratio, warnings } = pickAspectRatio(request, KIE_ASPECT_RATIOS, 'KIE Flux Kontext', '1:1');
  if (request.outputFormat === 'webp') throw new ValidationError('output_format', 'KIE Flux Kontext makes jpeg or png, not webp.');
  const body: Record<string, unknown> = { prompt: request.prompt, model, aspectRatio: ratio, outputFormat: request.outputFormat ?? 'png' };
  warnings.push(
    ...unsupported('kie', model, [
      ['negative_prompt', request.negativePrompt],
      ['seed', request.seed],
      ['steps', request.steps],
      ['guidance', request.guidance],
      ['quality', request.quality],
      ['style (vivid|natural)', request.openaiStyle],
    ]),
  );
  return { provider: 'kie', model, count: request.count, body, warnings, width: undefined, height: undefined };
}

interface KieEnvelope<T> {
  code?: number;
  msg?: string;
  message?: string;
  data?: T | null;
}

interface KieRecord {
  taskId?: string;
  successFlag?: number;
  response?: { resultImageUrl?: string; originImageUrl?: string } | null;
  errorCode?: number | string | null;
  errorMessage?: string | null;
}

/** An envelope's error `code` (also inside HTTP 200) as the failure it means. */
function envelopeError(code: number, message: string): Error {
  const text = `kie answered code ${code}: ${message}`.slice(0, 500);
  if (code === 501) return new GenerationFailedError('kie', text, code);
  if (code === 402) return new ProviderCallError('kie', 'unavailable', `${text} (the KIE account has no credits left)`, { upstreamStatus: code });
  if (code === 455 || code === 505) return new ProviderCallError('kie', 'unavailable', text, { upstreamStatus: code });
  return new ProviderCallError('kie', kindForStatus(code), text, { upstreamStatus: code });
}

export class KieImageProvider implements ImageModelProvider {
  constructor(private readonly settings: HttpSettings) {}

  private async call<T>(path: string, init: RequestInit, key: ResolvedProviderKey, signal: AbortSignal | undefined): Promise<T> {
    const { response, bytes } = await exchange('kie', this.settings, `${this.settings.baseUrl}${path}`, { ...init, headers: { authorization: `Bearer ${key.apiKey}`, 'content-type': 'application/json', accept: 'application/json' } }, signal);
    const envelope = parseJson(bytes) as KieEnvelope<T> | undefined;
    const message = envelope?.msg ?? envelope?.message ?? '';
    // Public clients check both: the HTTP status and the envelope's code.
    if (!response.ok) throw envelopeError(typeof envelope?.code === 'number' && envelope.code !== 200 ? envelope.code : response.status, message || `HTTP ${response.status}`);
    if (envelope === undefined || typeof envelope !== 'object') throw new ProviderCallError('kie', 'invalid_request', 'kie answered something that is not its JSON envelope.', { upstreamStatus: response.status });
    if (envelope.code !== 200) throw envelopeError(envelope.code ?? 500, message || 'no message');
    if (envelope.data === undefined || envelope.data === null) throw new ProviderCallError('kie', 'invalid_request', 'kie answered without data.', { upstreamStatus: 200 });
    return envelope.data;
  }

  async submit(plan: ImagePlan, key: ResolvedProviderKey, signal?: AbortSignal): Promise<ImageProgress> {
    const taskIds: string[] = [];
    for (let index = 0; index < plan.count; index += 1) {
      const data = await this.call<{ taskId?: string }>('/api/v1/flux/kontext/generate', { method: 'POST', body: JSON.stringify(plan.body) }, key, signal);
      if (typeof data.taskId !== 'string' || data.taskId === '') throw new ProviderCallError('kie', 'invalid_request', 'kie accepted the task without a taskId.', { upstreamStatus: 200 });
      taskIds.push(data.taskId);
    }
    return { state: 'pending', task: { taskIds } };
  }

  async poll(task: ImageTask, key: ResolvedProviderKey, signal?: AbortSignal): Promise<ImageProgress> {
    const taskIds = Array.isArray(task.taskIds) ? task.taskIds.filter((id): id is string => typeof id === 'string') : [];
    const outputs: ImageOutput[] = [];
    for (const taskId of taskIds) {
      const record = await this.call<KieRecord>(`/api/v1/flux/kontext/record-info?taskId=${encodeURIComponent(taskId)}`, { method: 'GET' }, key, signal);
      switch (record.successFlag) {
        case 1: {
          const url = record.response?.resultImageUrl ?? record.response?.originImageUrl;
          if (!url) throw new GenerationFailedError('kie', `kie finished task ${taskId} without an image URL.`, 200);
          outputs.push({ url });
          break;
        }
        case 2:
        case 3: {
          const reason = record.errorMessage || `task ${record.successFlag === 2 ? 'could not be created' : 'failed'}`;
          if (String(record.errorCode) === '400' || /flagged|content polic|sensitive|nsfw/i.test(reason)) throw new ContentFilteredError('kie', `KIE refused the prompt: ${reason}`.slice(0, 500));
          throw new GenerationFailedError('kie', `kie could not make the image: ${reason}`.slice(0, 500), 200);
        }
        case 0:
        case undefined:
        default:
          // 0 = still generating (or a record without a flag yet).
          return { state: 'pending', task };
      }
    }
    return { state: 'done', outputs };
  }
}
