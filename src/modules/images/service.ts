import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import type { Events } from '../../infra/cache/index.js';
import type { Database } from '../../infra/db/database.js';
import { AppError, NotFoundError, ProviderKeyRequiredError, UpstreamError, UpstreamTimeoutError, ValidationError } from '../../infra/http/errors.js';
import { safeFetch } from '../../infra/http/safe-fetch.js';
import type { JobOutcome, JobQueue } from '../../infra/queue/index.js';
import { contractErrorForProviderFailure, isProviderFailure } from '../../infra/http/provider-failure.js';
import { ProviderCallError } from '../../providers/chat/provider-error.js';
import {
  ContentFilteredError,
  GenerationFailedError,
  IMAGE_PROVIDERS,
  planImage,
  providerOfModel,
  sniffImage,
  type ImageOutput,
  type ImagePlan,
  type ImageProgress,
  type ImageProviderName,
  type ImageRequest,
  type ImageStyle,
  type ImageTask,
} from '../../providers/images/index.js';
import type { Lease, ProviderGateway } from '../gateway/index.js';
import type { ProviderKeyVault } from '../identity/index.js';
import type { IdentityService } from '../identity/service.js';
import type { UserRow } from '../identity/store.js';
import type { UsageRecorder } from '../usage/usage-recorder.js';
import * as store from './store.js';
import type { GeneratedImageRow } from './tables.js';

/** The part of stored media (modules/media) images use: bytes in, signed URLs and bytes out. */
export interface ImageMediaPort {
  save(input: { userId: string | null; kind: 'image'; bytes: Buffer; contentType: string; metadata?: Record<string, unknown> }): Promise<{ id: string; expiresAt: Date | null }>;
  find(id: string): Promise<{ id: string; expiresAt: Date | null } | undefined>;
  read(id: string, viewer: { user: UserRow | undefined; admin: boolean }): Promise<{ bytes: Buffer; contentType: string }>;
  signedUrl(row: { id: string; expiresAt: Date | null }, options?: { ttlSeconds?: number; origin?: string | undefined }): { url: string; expiresAt: Date };
  delete(id: string): Promise<boolean>;
}

export const MAX_PROMPT_CHARACTERS = 4000;

export interface GenerateInput extends Partial<Omit<ImageRequest, 'prompt' | 'count' | 'style'>> {
  user: UserRow;
  prompt: string;
  provider?: ImageProviderName | undefined;
  style?: ImageStyle | undefined;
  count?: number | undefined;
  characterId?: string | undefined;
  requestId?: string | undefined;
  idempotencyKey?: string | undefined;
}

export interface Generation {
  generationId: string;
  plan: ImagePlan;
  rows: GeneratedImageRow[];
}

declare module '../../infra/queue/queue.js' {
  interface JobPayloads {
    'images.generate': { generationId: string };
  }
}

export interface ImagesServiceDependencies {
  config: Readonly<Config>;
  db: Database;
  logger: Logger;
  queue: JobQueue;
  events: Events;
  gateway: ProviderGateway;
  media: ImageMediaPort;
  identity: IdentityService;
  vault: ProviderKeyVault;
  usage: UsageRecorder;
  /** Downloads a vendor's image URL; defaults to the SSRF-safe fetch. A test seam. */
  download?: (url: string, maxBytes: number, signal: AbortSignal) => Promise<Buffer>;
  sleep?: (milliseconds: number) => Promise<void>;
}

const channelOf = (generationId: string) => `images:generation:${generationId}`;
const FINISHED: ReadonlySet<GeneratedImageRow['status']> = new Set(['succeeded', 'failed']);

/**
 * Image generation as a job, and the gallery. `generate` checks the request (the vendor mapping
 * throws 422 naming a field a provider cannot honour), makes sure a key exists (402 early),
 * records pending rows and enqueues `images.generate`; the job takes a gateway lease (key,
 * billing), submits, polls with backoff, downloads SSRF-safely, checks the bytes really are an
 * image, stores them as media and settles only what was delivered — a failed or filtered
 * generation is released, never charged.
 */
export class ImagesService {
  constructor(private readonly dependencies: ImagesServiceDependencies) {}

  // ---- generation ----

  /** The provider for a request that names none: the model's owner, else the default if usable, else the first with a key. */
  async chooseProvider(user: UserRow, requested: ImageProviderName | undefined, model: string | undefined): Promise<ImageProviderName> {
    if (requested) return requested;
    const owner = model !== undefined ? providerOfModel(model) : undefined;
    if (owner) return owner;
    const preferred = this.dependencies.config.images.defaultProvider;
    const usable = await this.dependencies.vault.status(user);
    if (usable[preferred]) return preferred;
    return IMAGE_PROVIDERS.find((provider) => usable[provider]) ?? preferred;
  }

  async generate(input: GenerateInput): Promise<Generation> {
    const { db, queue, config } = this.dependencies;
    const prompt = input.prompt.trim();
    if (prompt === '') throw new ValidationError('prompt', 'The prompt is empty.');
    if (prompt.length > MAX_PROMPT_CHARACTERS) throw new ValidationError('prompt', `The prompt is longer than ${MAX_PROMPT_CHARACTERS} characters.`);
    const provider = await this.chooseProvider(input.user, input.provider, input.model);
    if (input.model !== undefined) {
      const owner = providerOfModel(input.model);
      if (owner !== undefined && owner !== provider) throw new ValidationError('model', `${input.model} is a ${owner} model, not a ${provider} one.`);
    }
    const request: ImageRequest = {
      prompt,
      style: input.style ?? 'quality',
      model: input.model,
      count: input.count ?? 1,
      size: input.size,
      aspectRatio: input.aspectRatio,
      negativePrompt: input.negativePrompt,
      seed: input.seed,
      steps: input.steps,
      guidance: input.guidance,
      outputFormat: input.outputFormat,
      quality: input.quality,
      openaiStyle: input.openaiStyle,
    };
    const plan = planImage(provider, request);
    // Refusals are answered now, not as a failed image later: the job resolves and authorizes again.
    await this.preflight(input.user, provider, plan, input.characterId);
    const generationId = randomUUID();
    const now = new Date();
    const rows = await store.insertImages(
      db,
      Array.from({ length: plan.count }, (_unused, position) => ({
        userId: input.user.id,
        generationId,
        position,
        characterId: input.characterId ?? null,
        status: 'pending' as const,
        provider,
        model: plan.model,
        style: input.style ?? null,
        prompt,
        negativePrompt: input.negativePrompt ?? null,
        parameters: { requested: stripUndefined({ ...request, prompt: undefined }), plan: { body: plan.body, count: plan.count }, warnings: plan.warnings },
        width: plan.width ?? null,
        height: plan.height ?? null,
        seed: input.seed ?? null,
        requestId: input.requestId ?? null,
        createdAt: now,
      })),
    );
    await queue.enqueue('images.generate', { generationId }, { jobId: `images-${generationId}`, attempts: 2 });
    this.dependencies.logger.info({ generationId, provider, model: plan.model, count: plan.count, timeoutMs: config.images.jobTimeoutMs }, 'image generation queued');
    return { generationId, plan, rows };
  }

  /**
   * What the job's lease would refuse, refused before anything is queued: no key (402
   * provider_key_required naming the provider), the plan without image generation (403), the
   * images per day spent (429), too few credits when the platform pays (402 insufficient_credits).
   * The gateway is asked exactly as the job will ask it, and the probe is given back at once (the
   * day's image count and any credits held return); the job takes the real lease. Two requests
   * racing for the last credit can both pass here: the loser's job then fails with the same error.
   */
  private async preflight(user: UserRow, provider: ImageProviderName, plan: ImagePlan, characterId: string | undefined): Promise<void> {
    const usable = await this.dependencies.vault.status(user);
    if (!usable[provider]) throw new ProviderKeyRequiredError(provider, this.dependencies.config.setupUrl);
    const probe = await this.beginImageLease(user, plan, { characterId });
    await probe.fail(new Error('request-time check of an image generation'));
  }

  /** The gateway lease of a generation: the plan's image feature, the images per day and, when the platform pays, credits for `plan.count` images. */
  private beginImageLease(
    user: UserRow,
    plan: ImagePlan,
    call: { characterId: string | undefined; requestId?: string | undefined; idempotencyKey?: string | undefined },
  ): Promise<Lease<'image'>> {
    return this.dependencies.gateway.begin({
      modality: 'image',
      provider: plan.provider,
      service: 'image',
      user,
      model: plan.model,
      feature: 'image_generation',
      estimate: { images: plan.count },
      ...call,
    });
  }

  /** Resolves with the generation's rows once all are finished, or as they are when `timeoutMs` passes. */
  async waitFor(generationId: string, timeoutMs: number, signal?: AbortSignal): Promise<GeneratedImageRow[]> {
    const { db, events } = this.dependencies;
    const deadline = Date.now() + timeoutMs;
    let wake: (() => void) | undefined;
    const unsubscribe = await events.subscribe(channelOf(generationId), () => wake?.());
    try {
      for (;;) {
        const rows = await store.imagesOfGeneration(db, generationId);
        const remaining = deadline - Date.now();
        if (rows.every((row) => FINISHED.has(row.status)) || remaining <= 0 || signal?.aborted) return rows;
        // The event wakes us at once; the timer covers a missed message (another replica's restart).
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(remaining, 1000));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    } finally {
      await unsubscribe();
    }
  }

  /** The job: lease → submit → poll → download → store → settle (or release). Never throws for a vendor's fault. */
  async runJob(payload: { generationId: string }): Promise<JobOutcome> {
    const { db, identity, logger } = this.dependencies;
    const rows = await store.imagesOfGeneration(db, payload.generationId);
    const first = rows[0];
    if (!first || rows.every((row) => FINISHED.has(row.status))) return 'skipped';
    const user = await identity.findUser(first.userId);
    if (!user) {
      await this.failAll(payload.generationId, new NotFoundError('User'));
      return 'skipped';
    }
    const provider = first.provider as ImageProviderName;
    const planData = (first.parameters.plan ?? {}) as { body?: Record<string, unknown>; count?: number };
    const plan: ImagePlan = { provider, model: first.model, count: rows.length, body: planData.body ?? {}, warnings: [], width: first.width ?? undefined, height: first.height ?? undefined };
    let lease: Lease<'image'>;
    try {
      lease = await this.beginImageLease(user, plan, {
        characterId: first.characterId ?? undefined,
        requestId: first.requestId ?? undefined,
        idempotencyKey: `images:${payload.generationId}`,
      });
    } catch (error) {
      // Billing refused (credits, images per day, plan) or no key: nothing was reserved.
      await this.failAll(payload.generationId, error);
      return 'success';
    }
    await store.updateUnfinished(db, payload.generationId, { status: 'running', paidBy: lease.key.source });
    let delivered: DeliveredImages = [];
    try {
      const done = await this.drive(payload.generationId, plan, lease, first.providerTask ?? undefined);
      delivered = await this.deliver(rows, done.outputs, user);
      if (delivered.length === 0) throw await lease.fail(delivered.firstError ?? new GenerationFailedError(provider, 'No image was delivered.'));
      const { creditsMicro } = await lease.settle({ model: plan.model, images: delivered.length, promptTokens: done.usage?.promptTokens, completionTokens: done.usage?.completionTokens, providerCostUsd: done.providerCostUsd });
      const costUsd = this.costOf(provider, plan.model, delivered.length, done);
      // Only now are the images `succeeded`: a reader (the waiting request, GET /v1/images/{id})
      // never sees a finished image whose charge is not known yet.
      for (const [index, image] of delivered.entries()) {
        // Credits split so the rows add up to the charge exactly.
        const share = Math.floor(creditsMicro / delivered.length) + (index < creditsMicro % delivered.length ? 1 : 0);
        await store.updateImage(db, image.id, { ...image.values, status: 'succeeded', creditsMicro: share, costUsd: costUsd / delivered.length, completedAt: new Date() });
      }
      logger.info({ generationId: payload.generationId, provider, delivered: delivered.length, creditsMicro }, 'images generated');
    } catch (error) {
      const final = await lease.fail(error);
      await this.failAll(payload.generationId, final);
      // Bytes stored for images that did not make it (settling failed) are not kept.
      for (const image of delivered) if (image.values.mediaId) await this.dependencies.media.delete(image.values.mediaId).catch(() => false);
      logger.warn({ err: final, generationId: payload.generationId, provider }, 'image generation failed');
    } finally {
      await this.notify(payload.generationId);
    }
    return 'success';
  }

  private costOf(provider: ImageProviderName, model: string, images: number, done: Extract<ImageProgress, { state: 'done' }>): number {
    return this.dependencies.usage.costOf(provider, 'image', { model, images, promptTokens: done.usage?.promptTokens, completionTokens: done.usage?.completionTokens, providerCostUsd: done.providerCostUsd });
  }

  /** Submit (or resume a stored task) and poll with growing waits until done or the job's time is up. */
  private async drive(generationId: string, plan: ImagePlan, lease: Lease<'image'>, storedTask: ImageTask | undefined): Promise<Extract<ImageProgress, { state: 'done' }>> {
    const { config, db } = this.dependencies;
    const deadline = Date.now() + config.images.jobTimeoutMs;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error('image job timeout')), config.images.jobTimeoutMs);
    timer.unref();
    let progress: ImageProgress | undefined;
    try {
      progress = storedTask ? { state: 'pending', task: storedTask } : await lease.adapter.submit(plan, lease.key, controller.signal);
      if (progress.state === 'pending') await store.updateUnfinished(db, generationId, { providerTask: progress.task });
      let wait = config.images.pollIntervalMs;
      while (progress.state === 'pending') {
        if (Date.now() + wait > deadline) {
          await lease.adapter.cancel?.(progress.task, lease.key);
          throw new UpstreamTimeoutError(plan.provider, `${plan.provider} did not finish the image within ${Math.round(config.images.jobTimeoutMs / 1000)} s.`);
        }
        await this.sleep(wait);
        wait = Math.min(10_000, Math.round(wait * 1.5));
        progress = await this.pollWithRetry(lease, progress.task, controller.signal);
      }
      return progress;
    } catch (error) {
      if (controller.signal.aborted && !(error instanceof UpstreamTimeoutError)) {
        if (progress?.state === 'pending') await lease.adapter.cancel?.(progress.task, lease.key);
        throw new UpstreamTimeoutError(plan.provider, `${plan.provider} did not finish the image within ${Math.round(config.images.jobTimeoutMs / 1000)} s.`);
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A status poll that hits a passing fault (429, 5xx, network) is tried again on the next round, a few times. */
  private async pollWithRetry(lease: Lease<'image'>, task: ImageTask, signal: AbortSignal): Promise<ImageProgress> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await lease.adapter.poll(task, lease.key, signal);
      } catch (error) {
        if (!(error instanceof ProviderCallError) || !error.retryable || attempt >= 3 || signal.aborted) throw error;
        await this.sleep(Math.min(10_000, (error.retryAfterSeconds ?? 0.5 * 2 ** attempt) * 1000));
      }
    }
  }

  /**
   * Downloads, checks and stores each output; fails the rows that did not make it and returns
   * the others with their columns, written (as `succeeded`) once the charge is settled.
   */
  private async deliver(rows: GeneratedImageRow[], outputs: ImageOutput[], user: UserRow): Promise<DeliveredImages> {
    const { media } = this.dependencies;
    const delivered: DeliveredImages = [];
    for (const [position, row] of rows.entries()) {
      const output = outputs[position];
      try {
        if (!output) throw new GenerationFailedError(row.provider, `${row.provider} returned ${outputs.length} of ${rows.length} images.`);
        if (output.filtered) throw new ContentFilteredError(row.provider, `${row.provider}'s safety checker filtered this image.`);
        const bytes = output.bytes ?? (await this.download(row.provider, output.url));
        const sniffed = sniffImage(bytes);
        if (!sniffed) throw new GenerationFailedError(row.provider, `What ${row.provider} delivered is not a PNG, JPEG or WebP image.`);
        const saved = await media.save({ userId: user.id, kind: 'image', bytes, contentType: sniffed.contentType, metadata: { image_id: row.id, provider: row.provider } });
        delivered.push({
          id: row.id,
          values: {
            mediaId: saved.id,
            contentType: sniffed.contentType,
            width: sniffed.width,
            height: sniffed.height,
            byteSize: bytes.length,
            seed: output.seed ?? row.seed,
            revisedPrompt: output.revisedPrompt ?? null,
            providerTask: null,
          },
        });
      } catch (error) {
        delivered.firstError ??= error;
        await this.failRow(row.id, error);
      }
    }
    return delivered;
  }

  private async download(provider: string, url: string | undefined): Promise<Buffer> {
    const { config } = this.dependencies;
    if (!url) throw new GenerationFailedError(provider, `${provider} gave neither image bytes nor a URL.`);
    const data = /^data:image\/[a-z0-9.+-]+;base64,(.+)$/i.exec(url);
    if (data) return Buffer.from(data[1]!, 'base64');
    const signal = AbortSignal.timeout(config.upstreamTimeoutMs);
    try {
      if (this.dependencies.download) return await this.dependencies.download(url, config.images.maxBytes, signal);
      // The vendor's CDN is still a URL from outside: vetted like any other, and any content type is
      // let through here because the bytes themselves are checked next.
      const fetched = await safeFetch(url, { allowPrivate: config.allowPrivateFetch, field: 'image_url', maxBytes: config.images.maxBytes, timeoutMs: config.upstreamTimeoutMs, acceptContentType: () => true, signal });
      return fetched.bytes;
    } catch (error) {
      throw new UpstreamError(provider, `The image could not be downloaded from ${provider}'s CDN: ${error instanceof Error ? error.message : String(error)}`.slice(0, 500), { cause: error });
    }
  }

  private async failRow(id: string, error: unknown): Promise<void> {
    await store.updateImage(this.dependencies.db, id, { status: 'failed', ...errorColumns(error), providerTask: null, completedAt: new Date() });
  }

  private async failAll(generationId: string, error: unknown): Promise<void> {
    await store.updateUnfinished(this.dependencies.db, generationId, { status: 'failed', ...errorColumns(error), providerTask: null, completedAt: new Date() });
    await this.notify(generationId);
  }

  private async notify(generationId: string): Promise<void> {
    await this.dependencies.events.publish(channelOf(generationId), 'finished').catch((error: unknown) => this.dependencies.logger.warn({ err: error }, 'could not publish an image event'));
  }

  private sleep(milliseconds: number): Promise<void> {
    if (this.dependencies.sleep) return this.dependencies.sleep(milliseconds);
    return new Promise((resolve) => setTimeout(resolve, milliseconds));
  }

  // ---- gallery ----

  /** The image when the viewer may see it (its owner, or an admin); 404 otherwise. */
  async imageFor(id: string, user: UserRow, admin = false): Promise<GeneratedImageRow> {
    if (!UUID_PATTERN.test(id)) throw new NotFoundError('Image');
    const row = await store.findImage(this.dependencies.db, id);
    if (!row || (row.userId !== user.id && !admin)) throw new NotFoundError('Image');
    return row;
  }

  async list(user: UserRow, options: { limit: number; cursor: string | undefined; favorite: boolean | undefined; characterId: string | undefined; status: GeneratedImageRow['status'] | undefined }) {
    const before = decodeCursor(options.cursor);
    const rows = await store.listImages(this.dependencies.db, { userId: user.id, favorite: options.favorite, characterId: options.characterId, status: options.status, before, limit: options.limit + 1 });
    const page = rows.slice(0, options.limit);
    const last = page.at(-1);
    return { data: page, nextCursor: rows.length > options.limit && last ? encodeCursor(last) : null };
  }

  async update(row: GeneratedImageRow, changes: { favorite?: boolean | undefined; title?: string | null | undefined }): Promise<GeneratedImageRow> {
    const values: Partial<GeneratedImageRow> = {};
    if (changes.favorite !== undefined) values.favorite = changes.favorite;
    if (changes.title !== undefined) values.title = changes.title;
    if (Object.keys(values).length === 0) return row;
    return (await store.updateImage(this.dependencies.db, row.id, values)) ?? row;
  }

  /** Deletes the row and its bytes. */
  async delete(row: GeneratedImageRow): Promise<void> {
    if (row.mediaId) await this.dependencies.media.delete(row.mediaId);
    await store.deleteImage(this.dependencies.db, row.id);
  }

  async content(row: GeneratedImageRow, user: UserRow, admin: boolean): Promise<{ bytes: Buffer; contentType: string }> {
    if (row.status !== 'succeeded' || !row.mediaId) throw new AppError(409, 'image_not_ready', row.status === 'failed' ? 'This image failed; it has no content.' : 'This image is not finished yet.');
    // The media belongs to the image's owner; an admin reads through the media service's admin path.
    return this.dependencies.media.read(row.mediaId, { user: admin ? undefined : user, admin });
  }

  /** An absolute URL anyone may fetch for a while (Discord, <img>), or undefined while the image is not stored. */
  async signedUrl(row: GeneratedImageRow, origin?: string): Promise<string | undefined> {
    if (row.status !== 'succeeded' || !row.mediaId) return undefined;
    const media = await this.dependencies.media.find(row.mediaId);
    return media ? this.dependencies.media.signedUrl(media, { origin }).url : undefined;
  }

  async bytesOf(row: GeneratedImageRow): Promise<Buffer | undefined> {
    if (row.status !== 'succeeded' || !row.mediaId) return undefined;
    return (await this.dependencies.media.read(row.mediaId, { user: undefined, admin: true })).bytes;
  }

  // ---- a user's data (export, DELETE /v1/me) ----

  async exportOf(userId: string): Promise<GeneratedImageRow[]> {
    return store.imagesOfUser(this.dependencies.db, userId);
  }

  async deleteAllOf(userId: string): Promise<void> {
    for (const row of await store.imagesOfUser(this.dependencies.db, userId)) await this.delete(row);
  }
}

/** Images stored as media, waiting for the charge before they are marked `succeeded`. */
type DeliveredImages = Array<{ id: string; values: Partial<GeneratedImageRow> }> & { firstError?: unknown };

/** The error a failed image keeps, as the client will read it. */
export function errorColumns(error: unknown): { errorCode: string; errorMessage: string; errorStatus: number } {
  // A vendor failure carries no status of ours: the one mapping of the HTTP edge decides it.
  if (isProviderFailure(error)) error = contractErrorForProviderFailure(error);
  if (error instanceof AppError) return { errorCode: error.code, errorMessage: error.message.slice(0, 1000), errorStatus: error.status };
  return { errorCode: 'internal_error', errorMessage: 'The image could not be generated.', errorStatus: 500 };
}

/** A failed image's error, rebuilt for an HTTP answer. */
export function errorOfRow(row: GeneratedImageRow): AppError {
  const extra: Record<string, unknown> = { provider: row.provider, image_id: row.id };
  if (row.errorCode === 'content_filtered') extra.field = 'prompt';
  return new AppError(row.errorStatus ?? 502, row.errorCode ?? 'generation_failed', row.errorMessage ?? 'The image could not be generated.', { extra });
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function encodeCursor(row: GeneratedImageRow): string {
  return Buffer.from(JSON.stringify([row.createdAt.toISOString(), row.id]), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string | undefined): { createdAt: Date; id: string } | undefined {
  if (cursor === undefined) return undefined;
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string];
    const date = new Date(createdAt);
    if (!Number.isNaN(date.getTime()) && UUID_PATTERN.test(id)) return { createdAt: date, id };
  } catch {
    // fall through
  }
  throw new ValidationError('cursor', 'The cursor is not one this API gave out.');
}

function stripUndefined(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined));
}
