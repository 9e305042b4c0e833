import { imageSize } from 'image-size';
import type { ProviderName } from '../../config.js';
import { AppError, ValidationError } from '../../infra/http/errors.js';
import type { ResolvedProviderKey } from '../../modules/identity/key-resolution.js';
import { CallDeadline } from '../chat/call-deadline.js';
import { ProviderCallError, kindForStatus, parseRetryAfter } from '../chat/provider-error.js';

/**
 * One small interface for image generation (conventions: one interface per modality). A
 * generation is a request mapped once per vendor (`plan`, pure: checked before anything is
 * queued), then `submit` and, for queue APIs, `poll` until done. Tasks are plain JSON so a job can
 * store them and resume polling after a restart.
 */

export const IMAGE_PROVIDERS = ['fal', 'openai', 'stability', 'kie'] as const;
export type ImageProviderName = (typeof IMAGE_PROVIDERS)[number] & ProviderName;

export const IMAGE_STYLES = ['fast', 'quality', 'pro'] as const;
export type ImageStyle = (typeof IMAGE_STYLES)[number];

export type OutputFormat = 'png' | 'jpeg' | 'webp';

/** The one request shape every provider maps from (already syntactically valid). */
export interface ImageRequest {
  prompt: string;
  style: ImageStyle;
  /** The vendor's model id; undefined = the style's model. */
  model: string | undefined;
  count: number;
  /** "WxH" as asked. */
  size: string | undefined;
  /** "W:H" as asked. */
  aspectRatio: string | undefined;
  negativePrompt: string | undefined;
  seed: number | undefined;
  steps: number | undefined;
  guidance: number | undefined;
  outputFormat: OutputFormat | undefined;
  /** OpenAI's own quality (standard|hd, low|medium|high|auto). */
  quality: string | undefined;
  /** OpenAI dall-e-3's vivid|natural (what the OpenAI SDK calls `style`). */
  openaiStyle: 'vivid' | 'natural' | undefined;
}

/** What a provider will be asked, decided before the job runs; stored with the images. */
export interface ImagePlan {
  provider: ImageProviderName;
  model: string;
  count: number;
  /** The vendor body (JSON) or form fields; the adapter sends it as the vendor wants. */
  body: Record<string, unknown>;
  /** What was asked and cannot be honoured exactly (said, not silently dropped). */
  warnings: string[];
  width: number | undefined;
  height: number | undefined;
}

/** A provider task still running: JSON the job stores (fal's URLs, KIE's task ids). */
export type ImageTask = Record<string, unknown>;

export interface ImageOutput {
  /** Bytes the vendor returned inline (base64, raw body)… */
  bytes?: Buffer | undefined;
  contentType?: string | undefined;
  /** …or a CDN URL to download (SSRF-safe) before it expires. */
  url?: string | undefined;
  seed?: number | undefined;
  revisedPrompt?: string | undefined;
  /** The vendor's safety checker flagged this image (fal has_nsfw_concepts, Stability CONTENT_FILTERED). */
  filtered?: boolean;
}

export type ImageProgress =
  | { state: 'pending'; task: ImageTask }
  | {
      state: 'done';
      outputs: ImageOutput[];
      providerCostUsd?: number | undefined;
      /** Token-priced models (gpt-image-1) report tokens; the price table turns them into cost. */
      usage?: { promptTokens: number; completionTokens: number } | undefined;
    };

export interface ImageModelProvider {
  submit(plan: ImagePlan, key: ResolvedProviderKey, signal?: AbortSignal): Promise<ImageProgress>;
  poll(task: ImageTask, key: ResolvedProviderKey, signal?: AbortSignal): Promise<ImageProgress>;
  /** Best effort: stop a task we gave up on. */
  cancel?(task: ImageTask, key: ResolvedProviderKey): Promise<void>;
}

/** The vendor refused the prompt or filtered every image: the client's to change, never charged. */
export class ContentFilteredError extends AppError {
  constructor(readonly provider: string, message: string) {
    super(422, 'content_filtered', message, { extra: { provider, field: 'prompt' } });
  }
}

/** The vendor took the task and reported that it failed (KIE successFlag 2/3, a fal error result). */
export class GenerationFailedError extends AppError {
  constructor(readonly provider: string, message: string, upstreamStatus?: number) {
    super(502, 'generation_failed', message, { extra: { provider, upstream_status: upstreamStatus ?? null } });
  }
}

export interface HttpSettings {
  baseUrl: string;
  timeoutMs: number;
  fetch?: typeof fetch | undefined;
}

/** One vendor HTTP exchange with a timeout; transport failures become ProviderCallError. */
export async function exchange(
  provider: ImageProviderName,
  settings: HttpSettings,
  url: string,
  init: RequestInit,
  signal: AbortSignal | undefined,
): Promise<{ response: Response; bytes: Buffer }> {
  const deadline = new CallDeadline(settings.timeoutMs, signal);
  try {
    const response = await (settings.fetch ?? fetch)(url, { ...init, signal: deadline.signal });
    const bytes = Buffer.from(await response.arrayBuffer());
    return { response, bytes };
  } catch (error) {
    if (deadline.timedOut) throw new ProviderCallError(provider, 'timeout', `${provider} did not answer within ${settings.timeoutMs} ms.`, { cause: error });
    if (deadline.callerAborted) throw new ProviderCallError(provider, 'aborted', 'The request was cancelled.', { cause: error });
    throw new ProviderCallError(provider, 'network', `${provider} could not be reached: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  } finally {
    deadline.dispose(true);
  }
}

export function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** A non-2xx vendor answer as a ProviderCallError, with the vendor's own message where it gives one. */
export function httpError(provider: ImageProviderName, response: Response, message: string | undefined): ProviderCallError {
  const kind = kindForStatus(response.status);
  const text = message ? `${provider} answered HTTP ${response.status}: ${message}` : `${provider} answered HTTP ${response.status}.`;
  return new ProviderCallError(provider, kind, text.slice(0, 500), { upstreamStatus: response.status, retryAfterSeconds: parseRetryAfter(response.headers.get('retry-after')) });
}

export const IMAGE_CONTENT_TYPES: Record<string, string> = { png: 'image/png', jpg: 'image/jpeg', webp: 'image/webp' };

export interface SniffedImage {
  contentType: string;
  width: number;
  height: number;
}

/**
 * What the bytes really are, from their magic numbers and headers (not from anyone's Content-Type):
 * PNG, JPEG or WebP with their pixel size, or undefined.
 */
export function sniffImage(bytes: Uint8Array): SniffedImage | undefined {
  try {
    const result = imageSize(bytes);
    const contentType = result.type ? IMAGE_CONTENT_TYPES[result.type] : undefined;
    if (!contentType || !result.width || !result.height) return undefined;
    return { contentType, width: result.width, height: result.height };
  } catch {
    return undefined;
  }
}

/** "1024x768" → {1024, 768}. */
export function parseSize(size: string): { width: number; height: number } | undefined {
  const match = /^(\d{2,5})x(\d{2,5})$/.exec(size.trim());
  if (!match) return undefined;
  return { width: Number(match[1]), height: Number(match[2]) };
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** The reduced "W:H" of a pixel size. */
export function ratioOf(width: number, height: number): string {
  const divisor = gcd(width, height);
  return `${width / divisor}:${height / divisor}`;
}

/** The aspect ratio a request asks for (aspect_ratio, or reduced from size), checked against a vendor's list. */
export function pickAspectRatio(request: ImageRequest, allowed: readonly string[], provider: string, fallback: string): { ratio: string; warnings: string[] } {
  const warnings: string[] = [];
  if (request.aspectRatio !== undefined) {
    if (!allowed.includes(request.aspectRatio)) throw new ValidationError('aspect_ratio', `${provider} supports the aspect ratios ${allowed.join(', ')}; not ${request.aspectRatio}.`);
    return { ratio: request.aspectRatio, warnings };
  }
  if (request.size !== undefined) {
    const size = parseSize(request.size);
    if (!size) throw new ValidationError('size', 'size must look like 1024x768.');
    // Vendors' own sizes are near, not exact (Stability's 16:9 is 1344x768): the closest ratio within 5% counts.
    const wanted = Math.log(size.width / size.height);
    const distance = (ratio: string) => {
      const [width = 1, height = 1] = ratio.split(':').map(Number);
      return Math.abs(Math.log(width / height) - wanted);
    };
    const ratio = [...allowed].sort((a, b) => distance(a) - distance(b))[0];
    if (ratio === undefined || distance(ratio) > Math.log(1.05)) {
      throw new ValidationError('size', `${provider} takes an aspect ratio, not a pixel size; ${request.size} is ${ratioOf(size.width, size.height)}, and the supported ratios are ${allowed.join(', ')}.`);
    }
    warnings.push(`${provider} picks the pixel size itself: the image has the aspect ratio ${ratio}, not necessarily ${request.size}.`);
    return { ratio, warnings };
  }
  return { ratio: fallback, warnings };
}

/** Says which asked-for parameters a provider ignores. */
export function unsupported(provider: string, model: string, fields: Array<[string, unknown]>): string[] {
  return fields.filter(([, value]) => value !== undefined).map(([name]) => `${name} is not supported by ${provider} (${model}) and was not applied.`);
}
