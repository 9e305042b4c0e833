/**
 * fal.ai fake for FLUX-style text-to-image apps: the synchronous run (`fal.run`), the queue
 * (`queue.fal.run`: submit, status, status stream, result, cancel, optional webhook), and the
 * CDN serving real PNG bytes. Auth is `Authorization: Key <id>:<secret>`.
 *
 * One server plays both hosts: set `FAL_BASE_URL=fake.url` and `FAL_QUEUE_BASE_URL=fake.queueUrl`
 * (`<url>/queue`). A test that points both variables at `fake.url` can choose what a POST at the
 * root does with `rootMode`.
 */
import { randomUUID } from 'node:crypto';
import { headerValue, plainObject, startFakeServer, type FakeContext, type FakeServer } from './fake-server.js';
import { colourFor, servedSize, solidPng } from './media.js';

export const FAL_IMAGE_SIZES: Record<string, { width: number; height: number }> = {
  square_hd: { width: 1024, height: 1024 },
  square: { width: 512, height: 512 },
  portrait_4_3: { width: 768, height: 1024 },
  portrait_16_9: { width: 576, height: 1024 },
  landscape_4_3: { width: 1024, height: 768 },
  landscape_16_9: { width: 1024, height: 576 },
};

export interface FalSettings {
  /** Valid `<key_id>:<key_secret>` pairs. */
  validKeys: string[];
  /** What `POST <url>/<owner>/<app>` does: run synchronously (fal.run) or enqueue (queue.fal.run). */
  rootMode: 'sync' | 'queue';
  /** Status polls answered IN_QUEUE, then IN_PROGRESS, before COMPLETED. */
  queuePolls: number;
  progressPolls: number;
  /** Delay between events of `…/status/stream`. */
  chunkDelayMs: number;
  /** Delay before a webhook (`?fal_webhook=`) is delivered. */
  webhookDelayMs: number;
  /** Prompts containing one of these words come back black with `has_nsfw_concepts: true`. */
  blockedWords: string[];
  /** Longer side of the served PNG; reported width/height stay the requested ones. Null = full size. */
  servedImageMaxSide: number | null;
  /** When set, queued requests finish with this error as their result. */
  resultError: { status: number; detail: unknown } | null;
}

export interface FalJob {
  requestId: string;
  model: string;
  input: Record<string, unknown>;
  result: { status: number; body: unknown };
  statusPolls: number;
  cancelled: boolean;
  completed: boolean;
  webhookUrl: string | undefined;
  /** Base of the absolute URLs handed out for this job. */
  base: string;
}

export interface FalFake extends FakeServer {
  /** Base URL of the queue host (`<url>/queue`): use as `FAL_QUEUE_BASE_URL`. */
  queueUrl: string;
  settings: FalSettings;
  jobs: Map<string, FalJob>;
  /** Webhook deliveries made so far (URL, body and the status the receiver answered). */
  webhooks: Array<{ url: string; body: unknown; status: number | undefined }>;
  errorBody(status: number): unknown;
}

export function falErrorBody(status: number): unknown {
  switch (status) {
    case 401:
      return { detail: 'No user found for Key ID and Secret' };
    case 422:
      return { detail: [{ loc: ['body', 'prompt'], msg: 'field required', type: 'value_error.missing' }] };
    case 404:
      return { detail: 'Not Found' };
    case 429:
      return { detail: 'Too many requests' };
    default:
      return { detail: status >= 500 ? 'Internal Server Error' : `Error ${status}` };
  }
}

type Validation = { ok: true; width: number; height: number } | { ok: false; detail: unknown[] };

function validate(input: Record<string, unknown>): Validation {
  const problems: unknown[] = [];
  if (input.prompt === undefined) problems.push({ loc: ['body', 'prompt'], msg: 'field required', type: 'value_error.missing' });
  else if (typeof input.prompt !== 'string') problems.push({ loc: ['body', 'prompt'], msg: 'str type expected', type: 'type_error.str' });
  const count = input.num_images ?? 1;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > 4) {
    problems.push({ loc: ['body', 'num_images'], msg: 'ensure this value is less than or equal to 4', type: 'value_error.number.not_le', ctx: { limit_value: 4 } });
  }
  const steps = input.num_inference_steps ?? 28;
  if (typeof steps !== 'number' || steps < 1 || steps > 50) {
    problems.push({ loc: ['body', 'num_inference_steps'], msg: 'ensure this value is less than or equal to 50', type: 'value_error.number.not_le', ctx: { limit_value: 50 } });
  }
  let width = 1024;
  let height = 768;
  const size = input.image_size ?? 'landscape_4_3';
  if (typeof size === 'string') {
    const preset = FAL_IMAGE_SIZES[size];
    if (preset === undefined) {
      problems.push({
        loc: ['body', 'image_size'],
        msg: `value is not a valid enumeration member; permitted: ${Object.keys(FAL_IMAGE_SIZES).map((name) => `'${name}'`).join(', ')}`,
        type: 'type_error.enum',
      });
    } else {
      ({ width, height } = preset);
    }
  } else {
    const custom = plainObject(size);
    if (typeof custom.width !== 'number' || typeof custom.height !== 'number' || custom.width < 1 || custom.height < 1 || custom.width > 14142 || custom.height > 14142) {
      problems.push({ loc: ['body', 'image_size'], msg: 'width and height must be integers between 1 and 14142', type: 'value_error' });
    } else {
      width = Math.round(custom.width);
      height = Math.round(custom.height);
    }
  }
  return problems.length > 0 ? { ok: false, detail: problems } : { ok: true, width, height };
}

export async function startFalFake(options: Partial<FalSettings> = {}): Promise<FalFake> {
  const settings: FalSettings = {
    validKeys: ['test-key-id:test-key-secret'],
    rootMode: 'sync',
    queuePolls: 1,
    progressPolls: 1,
    chunkDelayMs: 0,
    webhookDelayMs: 0,
    blockedWords: [],
    servedImageMaxSide: 64,
    resultError: null,
    ...options,
  };
  const jobs = new Map<string, FalJob>();
  const webhooks: FalFake['webhooks'] = [];
  const timers = new Set<NodeJS.Timeout>();

  /** Runs the model: the same answer for fal.run and for a queued request's result. */
  const run = (context: FakeContext, input: Record<string, unknown>): { status: number; body: unknown } => {
    const checked = validate(input);
    if (!checked.ok) return { status: 422, body: { detail: checked.detail } };
    const prompt = String(input.prompt);
    const count = typeof input.num_images === 'number' ? input.num_images : 1;
    const seed = typeof input.seed === 'number' ? input.seed : colourFor(prompt).reduce((sum, value) => sum * 256 + value, 0);
    const nsfw = settings.blockedWords.some((word) => prompt.toLowerCase().includes(word.toLowerCase())) && input.enable_safety_checker !== false;
    const served = servedSize(checked.width, checked.height, settings.servedImageMaxSide ?? undefined);
    const images = Array.from({ length: count }, (_unused, index) => {
      // A flagged image comes back black, as fal's safety checker does.
      const png = solidPng(served.width, served.height, nsfw ? [0, 0, 0] : colourFor(`${prompt}#${seed}#${index}`));
      const url = input.sync_mode === true ? `data:image/png;base64,${png.toString('base64')}` : context.storeFile(png, 'image/png', 'png');
      // The fake always serves PNG bytes, so it reports image/png even when jpeg was asked.
      return { url, width: checked.width, height: checked.height, content_type: 'image/png' };
    });
    return {
      status: 200,
      body: { images, timings: { inference: 0.01 }, seed, has_nsfw_concepts: images.map(() => nsfw), prompt },
    };
  };

  const jobUrls = (job: FalJob): Record<string, string> => {
    const [owner, app] = job.model.split('/');
    const root = `${job.base}/${owner}/${app}/requests/${job.requestId}`;
    return { response_url: root, status_url: `${root}/status`, cancel_url: `${root}/cancel` };
  };

  const statusBody = (job: FalJob, withLogs: boolean, advance: boolean): { code: number; body: Record<string, unknown> } => {
    if (advance && !job.completed && !job.cancelled) job.statusPolls += 1;
    const polls = job.statusPolls;
    const urls = jobUrls(job);
    if (!job.completed && !job.cancelled && polls <= settings.queuePolls) {
      return { code: 202, body: { status: 'IN_QUEUE', request_id: job.requestId, queue_position: settings.queuePolls - polls, ...urls } };
    }
    if (!job.completed && !job.cancelled && polls <= settings.queuePolls + settings.progressPolls) {
      const logs = withLogs ? [{ message: 'Generating image', level: 'INFO', source: 'user', timestamp: new Date().toISOString() }] : null;
      return { code: 202, body: { status: 'IN_PROGRESS', request_id: job.requestId, logs, ...urls } };
    }
    job.completed = true;
    return { code: 200, body: { status: 'COMPLETED', request_id: job.requestId, logs: withLogs ? [] : null, metrics: { inference_time: 0.01 }, ...urls } };
  };

  const deliverWebhook = (job: FalJob): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      job.completed = true;
      const ok = job.result.status === 200;
      const body = {
        request_id: job.requestId,
        gateway_request_id: job.requestId,
        status: ok ? 'OK' : 'ERROR',
        payload: job.result.body,
        ...(ok ? {} : { error: `Invalid status code: ${job.result.status}` }),
      };
      const record: FalFake['webhooks'][number] = { url: job.webhookUrl ?? '', body, status: undefined };
      webhooks.push(record);
      fetch(job.webhookUrl ?? '', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
        .then((response) => {
          record.status = response.status;
        })
        .catch(() => undefined);
    }, settings.webhookDelayMs);
    timers.add(timer);
  };

  const submit = async (context: FakeContext, model: string, base: string): Promise<void> => {
    const input = plainObject(context.request.body);
    const requestId = randomUUID();
    const computed = run(context, input);
    const result = computed.status === 200 && settings.resultError !== null ? { status: settings.resultError.status, body: { detail: settings.resultError.detail } } : computed;
    const job: FalJob = { requestId, model, input, result, statusPolls: 0, cancelled: false, completed: false, webhookUrl: context.request.query.fal_webhook, base };
    jobs.set(requestId, job);
    Object.assign(context.request.meta, { model, requestId, mode: 'queue', priority: headerValue(context.request.headers, 'x-fal-queue-priority') });
    if (job.webhookUrl !== undefined) deliverWebhook(job);
    await context.json(200, { status: 'IN_QUEUE', request_id: requestId, queue_position: settings.queuePolls, ...jobUrls(job) }, { 'x-fal-request-id': requestId });
  };

  const queueRequest = async (context: FakeContext, requestId: string, action: string): Promise<void> => {
    const job = jobs.get(requestId);
    if (job === undefined) {
      await context.json(404, { detail: 'Request not found' });
      return;
    }
    const { method, query } = context.request;
    const withLogs = query.logs === '1' || query.logs === 'true';
    if (action === '/status' && method === 'GET') {
      const { code, body } = statusBody(job, withLogs, true);
      await context.json(code, body, { 'x-fal-request-id': requestId });
      return;
    }
    if (action === '/status/stream' && method === 'GET') {
      const writer = context.sse({ 'x-fal-request-id': requestId }, settings.chunkDelayMs);
      for (;;) {
        const { code, body } = statusBody(job, withLogs, true);
        if (!(await writer.data(body))) return;
        if (code === 200) break;
      }
      writer.end();
      return;
    }
    if (action === '/cancel' && method === 'PUT') {
      if (job.completed) {
        await context.json(400, { status: 'ALREADY_COMPLETED' });
        return;
      }
      job.cancelled = true;
      await context.json(202, { status: 'CANCELLATION_REQUESTED' });
      return;
    }
    if (action === '' && method === 'GET') {
      if (job.cancelled) {
        await context.json(400, { detail: 'Request was cancelled' });
        return;
      }
      if (!job.completed) {
        await context.json(400, { detail: 'Request is still in progress' });
        return;
      }
      await context.json(job.result.status, job.result.body, { 'x-fal-request-id': requestId });
      return;
    }
    await context.json(405, { detail: 'Method Not Allowed' });
  };

  const checkKey = async (context: FakeContext): Promise<boolean> => {
    const header = headerValue(context.request.headers, 'authorization');
    if (header === undefined) {
      await context.json(401, { detail: 'Missing authorization header' });
      return false;
    }
    const match = /^Key\s+([^:\s]+):(\S+)$/.exec(header.trim());
    if (match === null) {
      await context.json(401, { detail: "Invalid Key Authorization header format. Expected '<key_id>:<key_secret>'" });
      return false;
    }
    if (!settings.validKeys.includes(`${match[1]}:${match[2]}`)) {
      await context.json(401, falErrorBody(401));
      return false;
    }
    return true;
  };

  const server = await startFakeServer(
    async (context) => {
      if (!(await checkKey(context))) return;
      const { method, path } = context.request;
      if (method === 'GET' && path === '/v1/models') {
        const limit = Number(context.request.query.limit ?? 10) || 10;
        const models = [
          { endpoint_id: 'fal-ai/flux/dev', metadata: { display_name: 'FLUX.1 [dev]', category: 'text-to-image', status: 'active' } },
          { endpoint_id: 'fal-ai/flux/schnell', metadata: { display_name: 'FLUX.1 [schnell]', category: 'text-to-image', status: 'active' } },
          { endpoint_id: 'fal-ai/flux-pro/v1.1', metadata: { display_name: 'FLUX1.1 [pro]', category: 'text-to-image', status: 'active' } },
        ];
        await context.json(200, { models: models.slice(0, limit), next_cursor: limit < models.length ? String(limit) : null, has_more: limit < models.length });
        return;
      }
      const queued = path.startsWith('/queue/');
      const relative = queued ? path.slice('/queue'.length) : path;
      const requestRoute = /^\/[^/]+\/[^/]+\/requests\/([^/]+)(\/status\/stream|\/status|\/cancel)?\/?$/.exec(relative);
      if (requestRoute !== null) {
        await queueRequest(context, requestRoute[1] ?? '', requestRoute[2] ?? '');
        return;
      }
      const modelRoute = /^\/([^/]+\/[^/]+(?:\/[^/]+)*)\/?$/.exec(relative);
      if (method === 'POST' && modelRoute !== null) {
        const model = modelRoute[1] ?? '';
        if (queued || settings.rootMode === 'queue') {
          await submit(context, model, queued ? `${context.baseUrl}/queue` : context.baseUrl);
          return;
        }
        Object.assign(context.request.meta, { model, mode: 'sync' });
        const result = run(context, plainObject(context.request.body));
        await context.json(result.status, result.body, { 'x-fal-request-id': randomUUID() });
        return;
      }
      await context.json(404, falErrorBody(404));
    },
    { errorBody: falErrorBody },
  );

  const close = async (): Promise<void> => {
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
    await server.close();
  };
  return { ...server, close, queueUrl: `${server.url}/queue`, settings, jobs, webhooks, errorBody: falErrorBody };
}
