/**
 * Stability AI fake: `POST /v2beta/stable-image/generate/{core,ultra,sd3}` with a real
 * multipart/form-data body, answering raw image bytes (`Accept: image/*`) or JSON
 * (`Accept: application/json`), and the `GET /v1/user/balance` key check.
 * Its root stands for `https://api.stability.ai`.
 */
import { randomUUID } from 'node:crypto';
import { bearerToken, headerValue, startFakeServer, type FakeContext, type FakeServer } from './fake-server.js';
import { colourFor, servedSize, solidPng } from './media.js';

export interface StabilitySettings {
  validKeys: string[];
  /** Credits on the account; each generation costs the model's price. Below it: 402. */
  credits: number;
  /** Prompts containing one of these words are refused with 403 `content_moderation`. */
  blockedWords: string[];
  /** Prompts containing one of these words succeed with `finish-reason: CONTENT_FILTERED`. */
  filteredWords: string[];
  /** Longer side of the served PNG. Null = the nominal size of the aspect ratio. */
  servedImageMaxSide: number | null;
}

export interface StabilityFake extends FakeServer {
  settings: StabilitySettings;
  errorBody(status: number): unknown;
}

const ASPECT_RATIOS: Record<string, { width: number; height: number }> = {
  '16:9': { width: 1344, height: 768 },
  '1:1': { width: 1024, height: 1024 },
  '21:9': { width: 1536, height: 640 },
  '2:3': { width: 832, height: 1216 },
  '3:2': { width: 1216, height: 832 },
  '4:5': { width: 896, height: 1088 },
  '5:4': { width: 1088, height: 896 },
  '9:16': { width: 768, height: 1344 },
  '9:21': { width: 640, height: 1536 },
};

const PRICES: Record<string, number> = { core: 3, ultra: 8, sd3: 6.5 };

export function stabilityError(name: string, errors: string[]): unknown {
  return { id: randomUUID().replaceAll('-', ''), name, errors };
}

export function stabilityErrorBody(status: number): unknown {
  switch (status) {
    case 400:
      return stabilityError('bad_request', ['prompt: cannot be empty']);
    case 401:
      return stabilityError('unauthorized', ['authorization: invalid or missing']);
    case 402:
      return stabilityError('payment_required', ['You lack sufficient credits to make this request. Please purchase more credits and try again.']);
    case 403:
      return stabilityError('content_moderation', ['Your request was flagged by our content moderation system, as a result your request was denied and you were not charged.']);
    case 404:
      return stabilityError('not_found', ['The requested resource was not found.']);
    case 413:
      return stabilityError('payload_too_large', ['body: payloads cannot be larger than 10MiB in size']);
    case 429:
      return stabilityError('rate_limit_exceeded', ['You have exceeded the rate limit of 150 requests within a 10 second period, and have been timed out for 60 seconds.']);
    default:
      return stabilityError(status >= 500 ? 'internal_error' : 'bad_request', [status >= 500 ? 'An unexpected server error has occurred, please try again later.' : `error ${status}`]);
  }
}

export async function startStabilityFake(options: Partial<StabilitySettings> = {}): Promise<StabilityFake> {
  const settings: StabilitySettings = {
    validKeys: ['test-key'],
    credits: 100,
    blockedWords: [],
    filteredWords: [],
    servedImageMaxSide: 64,
    ...options,
  };

  const readForm = async (context: FakeContext): Promise<Record<string, string> | undefined> => {
    const contentType = headerValue(context.request.headers, 'content-type') ?? '';
    if (!contentType.toLowerCase().startsWith('multipart/form-data')) return undefined;
    try {
      // The WHATWG Response parses multipart for real (boundaries, quoting, file parts).
      const form = await new Response(new Uint8Array(context.request.rawBody), { headers: { 'content-type': contentType } }).formData();
      const fields: Record<string, string> = {};
      form.forEach((value, name) => {
        if (typeof value === 'string') fields[name] = value;
      });
      return fields;
    } catch {
      return undefined;
    }
  };

  const generate = async (context: FakeContext, model: string): Promise<void> => {
    const fields = await readForm(context);
    if (fields === undefined) {
      await context.json(400, stabilityError('bad_request', ['content-type: must be multipart/form-data']));
      return;
    }
    context.request.meta.form = fields;
    context.request.meta.model = model;
    const accept = (headerValue(context.request.headers, 'accept') ?? '*/*').toLowerCase();
    const wantsJson = accept.includes('application/json');
    if (!wantsJson && !accept.includes('image/') && !accept.includes('*/*')) {
      await context.json(400, stabilityError('bad_request', ['accept: must be either image/* or application/json']));
      return;
    }
    const prompt = fields.prompt ?? '';
    const errors: string[] = [];
    if (prompt.trim().length === 0) errors.push('prompt: cannot be empty');
    else if (prompt.length > 10000) errors.push('prompt: must be at most 10000 characters');
    const aspectRatio = fields.aspect_ratio ?? '1:1';
    const nominal = ASPECT_RATIOS[aspectRatio];
    if (nominal === undefined) errors.push(`aspect_ratio: must be one of ${Object.keys(ASPECT_RATIOS).join(', ')}`);
    const outputFormat = fields.output_format ?? 'png';
    if (!['png', 'jpeg', 'webp'].includes(outputFormat)) errors.push('output_format: must be one of png, jpeg, webp');
    const seedText = fields.seed ?? '0';
    const requestedSeed = Number(seedText);
    if (!Number.isInteger(requestedSeed) || requestedSeed < 0 || requestedSeed > 4294967294) errors.push('seed: must be an integer between 0 and 4294967294');
    if (errors.length > 0 || nominal === undefined) {
      await context.json(400, stabilityError('bad_request', errors));
      return;
    }
    const lowered = prompt.toLowerCase();
    if (settings.blockedWords.some((word) => lowered.includes(word.toLowerCase()))) {
      await context.json(403, stabilityErrorBody(403));
      return;
    }
    const price = PRICES[model] ?? 3;
    if (settings.credits < price) {
      await context.json(402, stabilityErrorBody(402));
      return;
    }
    settings.credits -= price;

    // Seed 0 means "random"; the fake picks a deterministic one from the prompt.
    const seed = requestedSeed !== 0 ? requestedSeed : colourFor(prompt).reduce((sum, value) => sum * 256 + value, 0);
    const filtered = settings.filteredWords.some((word) => lowered.includes(word.toLowerCase()));
    const finishReason = filtered ? 'CONTENT_FILTERED' : 'SUCCESS';
    const served = servedSize(nominal.width, nominal.height, settings.servedImageMaxSide ?? undefined);
    const png = solidPng(served.width, served.height, filtered ? [96, 96, 96] : colourFor(`${prompt}#${seed}`));
    if (wantsJson) {
      await context.json(200, { image: png.toString('base64'), finish_reason: finishReason, seed });
      return;
    }
    // The fake always renders PNG, and says so in Content-Type even when jpeg/webp was asked.
    await context.send(200, png, { 'content-type': 'image/png', 'finish-reason': finishReason, seed: String(seed) });
  };

  const server = await startFakeServer(
    async (context) => {
      const key = bearerToken(context.request.headers);
      if (key === undefined || !settings.validKeys.includes(key)) {
        await context.json(401, stabilityErrorBody(401));
        return;
      }
      const { method, path } = context.request;
      const generation = /^\/v2beta\/stable-image\/generate\/(core|ultra|sd3)\/?$/.exec(path);
      if (method === 'POST' && generation !== null) {
        await generate(context, generation[1] ?? 'core');
        return;
      }
      if (method === 'GET' && path === '/v1/user/balance') {
        await context.json(200, { credits: settings.credits });
        return;
      }
      await context.json(404, stabilityErrorBody(404));
    },
    { errorBody: stabilityErrorBody },
  );
  return { ...server, settings, errorBody: stabilityErrorBody };
}
