import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageSize } from 'image-size';
import {
  pngDimensions,
  solidPng,
  startFalFake,
  startGeminiFake,
  startKieFake,
  startOpenAiFake,
  startStabilityFake,
  type FalFake,
  type GeminiFake,
  type KieFake,
  type OpenAiCompatibleFake,
  type StabilityFake,
} from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

const FAL_KEY = 'test-key-id:test-key-secret';

/**
 * Image generation end to end: the real server, every vendor a loopback fake (fal's queue with
 * absolute status/response URLs and its CDN, OpenAI base64 and URLs, Stability multipart with raw
 * bytes, KIE tasks with errors in HTTP 200 envelopes), the job lifecycle, the gallery, isolation,
 * vision describe and DELETE /v1/me.
 */
describe.each(backends())('images (%s)', (backend) => {
  let server: TestServer;
  let fal: FalFake;
  let openai: OpenAiCompatibleFake;
  let stability: StabilityFake;
  let kie: KieFake;
  let gemini: GeminiFake;

  beforeAll(async () => {
    [fal, openai, stability, kie, gemini] = await Promise.all([
      startFalFake({ rootMode: 'queue', queuePolls: 1, progressPolls: 1, blockedWords: ['forbidden'] }),
      startOpenAiFake({ validKeys: ['openai-platform'], blockedWords: ['forbidden'] }),
      startStabilityFake({ validKeys: ['stability-platform'], filteredWords: ['murky'], blockedWords: ['forbidden'] }),
      startKieFake({ validKeys: ['kie-user-key'], generatingPolls: 2 }),
      startGeminiFake({ validKeys: ['gemini-platform'], reply: 'A small square of a single colour.' }),
    ]);
    server = await startTestServer(backend, {
      FAL_BASE_URL: fal.url,
      FAL_QUEUE_BASE_URL: fal.queueUrl,
      FAL_API_KEY: FAL_KEY,
      OPENAI_BASE_URL: openai.url,
      OPENAI_API_KEY: 'openai-platform',
      STABILITY_BASE_URL: stability.url,
      STABILITY_API_KEY: 'stability-platform',
      KIE_BASE_URL: kie.url,
      GEMINI_BASE_URL: gemini.url,
      GEMINI_API_KEY: 'gemini-platform',
      IMAGE_POLL_INTERVAL_MS: '20',
      // Long enough for a loaded 2-core machine, short enough for the never-completing job's test.
      IMAGE_JOB_TIMEOUT_MS: '6000',
      MEMORY_FORMATION_DELAY_MS: '600000',
      // With Redis the jobs go through BullMQ; this server consumes them itself (no worker process here).
      RUN_WORKERS_IN_PROCESS: 'true',
    });
    // The free plan allows 5 images a day: users that draw a lot here are on the enterprise plan.
    for (const user of ['discord:alice', 'discord:dora', 'discord:erin', 'discord:frank', 'discord:gina', 'discord:ivan']) {
      const me = await server.request('GET', '/v1/me', as(user));
      const promoted = await server.request('PATCH', `/v1/admin/users/${me.body.id}`, { body: { plan: 'enterprise' } });
      expect(promoted.status).toBe(200);
    }
  }, 240_000);

  afterAll(async () => {
    await server?.stop();
    await Promise.all([fal?.close(), openai?.close(), stability?.close(), kie?.close(), gemini?.close()]);
  });

  const as = (user: string) => ({ key: server.internalKey, headers: { 'x-user-id': user } });
  const generate = (user: string, body: Record<string, unknown>) => server.request('POST', '/v1/images/generations', { ...as(user), body });
  const imageUsage = async (user: string) => {
    const exported = await server.request('GET', '/v1/me/export', as(user));
    return (exported.body.usage as Array<{ service: string; images: number; paid_by: string; paidBy?: string }>).filter((row) => row.service === 'image');
  };
  const usageOf = async (user: string, service: string) => {
    const exported = await server.request('GET', '/v1/me/export', as(user));
    return (exported.body.usage as Array<{ service: string }>).filter((row) => row.service === service);
  };
  const waitUntilFinished = async (user: string, id: string) => {
    for (let attempt = 0; attempt < 600; attempt += 1) {
      const image = await server.request('GET', `/v1/images/${id}`, as(user));
      if (image.body.status === 'succeeded' || image.body.status === 'failed') return image.body;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error('image did not finish');
  };

  describe('fal (queue API, CDN)', () => {
    it('submits to the queue, follows the absolute status and response URLs, downloads the PNG and stores it', async () => {
      const before = fal.requests.length;
      const response = await generate('discord:alice', { prompt: 'a watercolour fox', provider: 'fal', style: 'fast', size: '1024x768', seed: 42, negative_prompt: 'rain' });
      expect(response.status).toBe(200);
      const [item] = response.body.data;
      expect(item.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(response.body.warnings.join(' ')).toContain('negative_prompt is not supported by fal');
      const calls = fal.requests.slice(before);
      const submit = calls.find((request) => request.method === 'POST')!;
      expect(submit.path).toBe('/queue/fal-ai/flux/schnell');
      expect(submit.headers.authorization).toBe(`Key ${FAL_KEY}`);
      expect(submit.body).toMatchObject({ prompt: 'a watercolour fox', image_size: { width: 1024, height: 768 }, seed: 42, num_images: 1 });
      expect(calls.some((request) => request.path.endsWith('/status'))).toBe(true);
      expect(calls.some((request) => request.path.startsWith('/files/'))).toBe(true);

      // The signed URL serves the stored bytes without credentials.
      const bytes = Buffer.from(await (await fetch(item.url)).arrayBuffer());
      expect(pngDimensions(bytes).width).toBeGreaterThan(0);
      const image = response.body.images[0];
      expect(image).toMatchObject({ status: 'succeeded', provider: 'fal', model: 'fal-ai/flux/schnell', content_type: 'image/png', seed: 42, paid_by: 'platform', bytes: bytes.length, prompt: 'a watercolour fox' });
      expect(image.width).toBe(pngDimensions(bytes).width);
      // The price table prices images by model, so by style: schnell (fast) is the cheap one.
      expect(image.cost_usd).toBeCloseTo(0.003, 6);
      const usage = await imageUsage('discord:alice');
      expect(usage.some((row) => row.images === 1)).toBe(true);
    });

    it('a flagged image (has_nsfw_concepts) fails with content_filtered and costs nothing', async () => {
      const usageBefore = (await imageUsage('discord:dora')).length;
      const response = await generate('discord:dora', { prompt: 'something forbidden', provider: 'fal' });
      expect(response.status).toBe(422);
      expect(response.body.code).toBe('content_filtered');
      const list = await server.request('GET', '/v1/images?status=failed', as('discord:dora'));
      expect(list.body.data[0].error).toMatchObject({ code: 'content_filtered' });
      expect((await imageUsage('discord:dora')).length).toBe(usageBefore);
    });

    it('async: answers 202 pending at once, then GET shows the image succeed', async () => {
      fal.settings.queuePolls = 4;
      const response = await generate('discord:alice', { prompt: 'a slow lighthouse', provider: 'fal', async: true });
      fal.settings.queuePolls = 1;
      expect(response.status).toBe(202);
      expect(response.body.status).toBe('pending');
      expect(response.body.data).toEqual([]);
      const id = response.body.images[0].id as string;
      expect(['pending', 'running']).toContain((await server.request('GET', `/v1/images/${id}`, as('discord:alice'))).body.status);
      const finished = await waitUntilFinished('discord:alice', id);
      expect(finished.status, JSON.stringify(finished.error)).toBe('succeeded');
      expect(finished.url).toContain('/v1/media/');
    });

    it('async: pending at once, then GET shows the image failed with the reason (and no charge)', async () => {
      fal.settings.queuePolls = 3;
      const usageBefore = (await imageUsage('discord:dora')).length;
      const response = await generate('discord:dora', { prompt: 'a forbidden lighthouse', provider: 'fal', async: true });
      fal.settings.queuePolls = 1;
      expect(response.status).toBe(202);
      expect(response.body.status).toBe('pending');
      const id = response.body.images[0].id as string;
      expect(['pending', 'running']).toContain((await server.request('GET', `/v1/images/${id}`, as('discord:dora'))).body.status);
      const finished = await waitUntilFinished('discord:dora', id);
      expect(finished).toMatchObject({ status: 'failed', url: null, credits_charged: 0, error: { code: 'content_filtered' } });
      expect((await server.request('GET', `/v1/images/${id}/content`, as('discord:dora'))).status).toBe(409);
      expect((await imageUsage('discord:dora')).length).toBe(usageBefore);
    });

    it('a job that never completes fails with upstream_timeout, cancels the fal request and charges nothing', async () => {
      fal.settings.queuePolls = 1_000_000;
      const usageBefore = (await imageUsage('discord:erin')).length;
      const response = await generate('discord:erin', { prompt: 'an endless queue', provider: 'fal' });
      fal.settings.queuePolls = 1;
      expect(response.status).toBe(504);
      expect(response.body.code).toBe('upstream_timeout');
      expect(fal.requests.some((request) => request.method === 'PUT' && request.path.endsWith('/cancel'))).toBe(true);
      const [image] = (await server.request('GET', '/v1/images', as('discord:erin'))).body.data;
      expect(image).toMatchObject({ status: 'failed', error: { code: 'upstream_timeout' } });
      expect((await imageUsage('discord:erin')).length).toBe(usageBefore);
    });

    it('a CDN that fails leaves a failed image with the reason', async () => {
      const remove = fal.faults.add({ route: '/files/', status: 404, times: 1 });
      const response = await generate('discord:erin', { prompt: 'a lost file', provider: 'fal' });
      remove();
      expect(response.status).toBe(502);
      expect(response.body.detail).toContain('could not be downloaded');
    });
  });

  describe('OpenAI (base64 and URLs), through the real openai client', () => {
    it('images.generate with gpt-image-1 (base64 from the vendor) answers a URL', async () => {
      const client = new OpenAI({ apiKey: server.internalKey, baseURL: `${server.url}/v1`, defaultHeaders: { 'x-user-id': 'discord:alice' }, maxRetries: 0 });
      const result = await client.images.generate({ model: 'gpt-image-1', prompt: 'a red bicycle', size: '1024x1024' });
      expect(result.data?.[0]?.url).toContain('/v1/media/');
      const sent = openai.lastRequest('/images/generations')!.body as Record<string, unknown>;
      expect(sent).toMatchObject({ model: 'gpt-image-1', prompt: 'a red bicycle', size: '1024x1024', quality: 'medium' });
      expect(sent.response_format).toBeUndefined();
    });

    it('images.generate with dall-e-3 (URL from the vendor) gives b64_json and the revised prompt when asked', async () => {
      const client = new OpenAI({ apiKey: server.internalKey, baseURL: `${server.url}/v1`, defaultHeaders: { 'x-user-id': 'discord:alice' }, maxRetries: 0 });
      const result = await client.images.generate({ model: 'dall-e-3', prompt: 'a lighthouse', response_format: 'b64_json', style: 'natural' });
      const item = result.data![0]!;
      expect(pngDimensions(Buffer.from(item.b64_json!, 'base64')).width).toBeGreaterThan(0);
      expect(item.revised_prompt).toContain('a lighthouse');
      expect(openai.lastRequest('/images/generations')!.body).toMatchObject({ model: 'dall-e-3', response_format: 'url', style: 'natural' });
    });

    it('sizes and counts a model cannot do are 422 naming the field, before any vendor call', async () => {
      const before = openai.requestsTo('/images/generations').length;
      const badSize = await generate('discord:alice', { prompt: 'x', provider: 'openai', model: 'dall-e-3', size: '512x512' });
      expect(badSize.status).toBe(422);
      expect(badSize.body.field).toBe('size');
      const badCount = await generate('discord:alice', { prompt: 'x', provider: 'openai', model: 'dall-e-3', n: 2 });
      expect(badCount.body.field).toBe('n');
      expect(openai.requestsTo('/images/generations').length).toBe(before);
    });

    it('a content-policy refusal is content_filtered', async () => {
      const response = await generate('discord:alice', { prompt: 'something forbidden', provider: 'openai' });
      expect(response.status).toBe(422);
      expect(response.body.code).toBe('content_filtered');
    });
  });

  describe('Stability (multipart, raw bytes)', () => {
    it('sends multipart with Accept image/*, maps size to an aspect ratio and keeps the seed header', async () => {
      const response = await generate('discord:alice', { prompt: 'a castle', provider: 'stability', size: '1344x768', negative_prompt: 'fog', seed: 7, output_format: 'png' });
      expect(response.status).toBe(200);
      const request = stability.lastRequest('/generate/core')!;
      expect(request.headers.accept).toBe('image/*');
      expect(String(request.headers['content-type'])).toContain('multipart/form-data');
      expect(request.meta.form).toMatchObject({ prompt: 'a castle', aspect_ratio: '16:9', negative_prompt: 'fog', seed: '7', output_format: 'png' });
      expect(response.body.images[0]).toMatchObject({ seed: 7, content_type: 'image/png', status: 'succeeded' });
      expect(response.body.warnings.join(' ')).toContain('aspect ratio 16:9');
    });

    it('an aspect ratio Stability lacks is 422 naming size', async () => {
      const response = await generate('discord:alice', { prompt: 'a castle', provider: 'stability', size: '1000x300' });
      expect(response.status).toBe(422);
      expect(response.body.field).toBe('size');
    });

    it('finish-reason CONTENT_FILTERED and a 403 content_moderation are content_filtered', async () => {
      const filtered = await generate('discord:alice', { prompt: 'a murky pond', provider: 'stability' });
      expect(filtered.status).toBe(422);
      expect(filtered.body.code).toBe('content_filtered');
      const refused = await generate('discord:alice', { prompt: 'something forbidden', provider: 'stability' });
      expect(refused.body.code).toBe('content_filtered');
    });
  });

  describe('KIE (tasks, errors in 200 envelopes) and key fallback', () => {
    it('without a KIE key (no platform key, none of the user’s): 402 provider_key_required naming kie, nothing queued', async () => {
      const response = await generate('discord:frank', { prompt: 'a kite', provider: 'kie' });
      expect(response.status).toBe(402);
      expect(response.body).toMatchObject({ code: 'provider_key_required', provider: 'kie' });
      expect((await server.request('GET', '/v1/images', as('discord:frank'))).body.data).toEqual([]);
    });

    it('with the user’s own key: generate, poll record-info, download the JPEG; the user pays', async () => {
      const added = await server.request('POST', '/v1/me/provider-keys', { ...as('discord:frank'), body: { provider: 'kie', key: 'kie-user-key' } });
      expect(added.status).toBe(201);
      const response = await generate('discord:frank', { prompt: 'a kite over hills', provider: 'kie', style: 'pro', aspect_ratio: '4:3', output_format: 'jpeg', seed: 3 });
      expect(response.status).toBe(200);
      const generateCall = kie.lastRequest('/flux/kontext/generate')!;
      expect(generateCall.headers.authorization).toBe('Bearer kie-user-key');
      expect(generateCall.body).toMatchObject({ model: 'flux-kontext-max', aspectRatio: '4:3', outputFormat: 'jpeg' });
      expect(kie.requestsTo('/record-info').length).toBeGreaterThanOrEqual(3);
      expect(response.body.warnings.join(' ')).toContain('seed is not supported by kie');
      const image = response.body.images[0];
      expect(image).toMatchObject({ content_type: 'image/jpeg', paid_by: 'user', provider: 'kie', model: 'flux-kontext-max' });
      expect(image.cost_usd).toBeCloseTo(0.05, 6);
      const content = await server.request('GET', `/v1/images/${image.id}/content`, as('discord:frank'));
      expect(content.headers.get('content-type')).toBe('image/jpeg');
      const raw = await fetch(`${server.url}/v1/images/${image.id}/content`, { headers: { authorization: `Bearer ${server.internalKey}`, 'x-user-id': 'discord:frank' } });
      expect(imageSize(new Uint8Array(await raw.arrayBuffer())).type).toBe('jpg');
      const usage = await imageUsage('discord:frank');
      expect(usage.at(-1)).toMatchObject({ images: 1 });
    });

    it('a failed task (successFlag 3) and an error code inside HTTP 200 both give a failed image with the reason', async () => {
      kie.settings.failTasks = { successFlag: 3, errorCode: 500, errorMessage: 'Upstream model crashed' };
      const failed = await generate('discord:frank', { prompt: 'a broken kite', provider: 'kie' });
      kie.settings.failTasks = null;
      expect(failed.status).toBe(502);
      expect(failed.body.code).toBe('generation_failed');
      expect(failed.body.detail).toContain('Upstream model crashed');

      const credits = kie.settings.credits;
      kie.settings.credits = 0;
      const broke = await generate('discord:frank', { prompt: 'a poor kite', provider: 'kie' });
      kie.settings.credits = credits;
      expect(broke.status).toBe(502);
      expect(broke.body.detail).toContain('code 402');
    });

    it('a result URL that is not an image fails the image, whatever its Content-Type says', async () => {
      kie.settings.resultOverride = { bytes: Buffer.from('<html>not an image</html>'), contentType: 'image/png' };
      const response = await generate('discord:frank', { prompt: 'a fake picture', provider: 'kie' });
      kie.settings.resultOverride = null;
      expect(response.status).toBe(502);
      expect(response.body.detail).toContain('not a PNG, JPEG or WebP');
    });
  });

  describe('credits (billing)', () => {
    // On PostgreSQL + Redis this once charged 0: the rows were `succeeded` before the charge was
    // written and a waiting request could answer in between (test/images/billing.test.ts pins it).
    it('charges the plan’s credits per delivered image and nothing for a filtered one', async () => {
      const balance = async () => (await server.request('GET', '/v1/wallet/balance', as('discord:paula'))).body.balance as number;
      const start = await balance();
      const first = await generate('discord:paula', { prompt: 'a paid painting', provider: 'fal' });
      expect(first.status).toBe(200);
      expect(first.body.images[0].credits_charged).toBeGreaterThan(0);
      expect(await balance()).toBeCloseTo(start - first.body.images[0].credits_charged, 6);
      const afterFirst = await balance();
      const filtered = await generate('discord:paula', { prompt: 'a forbidden painting', provider: 'fal' });
      expect(filtered.status).toBe(422);
      expect(await balance()).toBeCloseTo(afterFirst, 6);
      // n images are n charges, split over the rows so they add up to the wallet's change.
      const two = await generate('discord:paula', { prompt: 'two paintings', provider: 'fal', n: 2 });
      expect(two.status).toBe(200);
      const charged = two.body.images.reduce((sum: number, image: { credits_charged: number }) => sum + image.credits_charged, 0);
      expect(charged).toBeCloseTo(2 * first.body.images[0].credits_charged, 6);
      expect(await balance()).toBeCloseTo(afterFirst - charged, 6);
    });
  });

  describe('bad input', () => {
    it.each([
      ['an empty prompt', { prompt: '   ' }, 'prompt'],
      ['an oversized prompt', { prompt: 'x'.repeat(4001) }, 'prompt'],
      ['an unknown provider', { prompt: 'a cat', provider: 'midjourney' }, 'provider'],
      ['an unknown style', { prompt: 'a cat', style: 'ultra' }, 'style'],
      ['a size fal cannot do', { prompt: 'a cat', provider: 'fal', size: '100000x2' }, 'size'],
      ['a format fal cannot make', { prompt: 'a cat', provider: 'fal', output_format: 'webp' }, 'output_format'],
      ['another provider’s model', { prompt: 'a cat', provider: 'fal', model: 'dall-e-3' }, 'model'],
    ])('%s → 422 naming the field', async (_label, body, field) => {
      const response = await generate('discord:alice', body);
      expect(response.status).toBe(422);
      expect(JSON.stringify(response.body)).toContain(field);
    });
  });

  describe('gallery', () => {
    let ids: string[] = [];

    beforeAll(async () => {
      ids = [];
      for (const prompt of ['first tree', 'second tree', 'third tree']) {
        const response = await generate('discord:gina', { prompt, provider: 'stability' });
        ids.push(response.body.images[0].id);
      }
    });

    it('lists own images newest first with cursor pagination', async () => {
      const first = await server.request('GET', '/v1/images?limit=2', as('discord:gina'));
      expect(first.body.data.map((image: { id: string }) => image.id)).toEqual([ids[2], ids[1]]);
      expect(first.body.next_cursor).toBeTruthy();
      const second = await server.request('GET', `/v1/images?limit=2&cursor=${first.body.next_cursor}`, as('discord:gina'));
      expect(second.body.data.map((image: { id: string }) => image.id)).toEqual([ids[0]]);
      expect(second.body.next_cursor).toBeNull();
      expect((await server.request('GET', '/v1/images?cursor=nonsense', as('discord:gina'))).status).toBe(422);
    });

    it('favourites and titles through PATCH; ?favorite=true filters', async () => {
      const patched = await server.request('PATCH', `/v1/images/${ids[0]}`, { ...as('discord:gina'), body: { favorite: true, title: 'My First Tree!' } });
      expect(patched.body).toMatchObject({ favorite: true, title: 'My First Tree!' });
      const favourites = await server.request('GET', '/v1/images?favorite=true', as('discord:gina'));
      expect(favourites.body.data.map((image: { id: string }) => image.id)).toEqual([ids[0]]);
    });

    it('serves the content with its type, caching headers, and a file name on ?download=1', async () => {
      const inline = await fetch(`${server.url}/v1/images/${ids[0]}/content`, { headers: { authorization: `Bearer ${server.internalKey}`, 'x-user-id': 'discord:gina' } });
      expect(inline.headers.get('content-type')).toBe('image/png');
      expect(inline.headers.get('cache-control')).toContain('private');
      const etag = inline.headers.get('etag')!;
      const bytes = Buffer.from(await inline.arrayBuffer());
      expect(pngDimensions(bytes).width).toBeGreaterThan(0);
      const download = await server.request('GET', `/v1/images/${ids[0]}/content?download=1`, as('discord:gina'));
      expect(download.headers.get('content-disposition')).toBe('attachment; filename="my-first-tree.png"');
      const again = await fetch(`${server.url}/v1/images/${ids[0]}/content`, { headers: { authorization: `Bearer ${server.internalKey}`, 'x-user-id': 'discord:gina', 'if-none-match': etag } });
      expect(again.status).toBe(304);
    });

    it('another user sees none of it: 404 on read, patch, delete and content; an empty list', async () => {
      for (const [method, path] of [
        ['GET', `/v1/images/${ids[1]}`],
        ['GET', `/v1/images/${ids[1]}/content`],
        ['DELETE', `/v1/images/${ids[1]}`],
      ] as const) {
        expect((await server.request(method, path, as('discord:hank'))).status).toBe(404);
      }
      expect((await server.request('PATCH', `/v1/images/${ids[1]}`, { ...as('discord:hank'), body: { favorite: true } })).status).toBe(404);
      expect((await server.request('GET', '/v1/images', as('discord:hank'))).body.data).toEqual([]);
    });

    it('DELETE removes the image and its bytes', async () => {
      const image = (await server.request('GET', `/v1/images/${ids[1]}`, as('discord:gina'))).body;
      expect((await fetch(image.url)).status).toBe(200);
      expect((await server.request('DELETE', `/v1/images/${ids[1]}`, as('discord:gina'))).status).toBe(204);
      expect((await server.request('GET', `/v1/images/${ids[1]}`, as('discord:gina'))).status).toBe(404);
      expect((await fetch(image.url)).status).toBe(404);
    });

    it('DELETE /v1/me removes the user’s images and their bytes', async () => {
      const image = (await server.request('GET', `/v1/images/${ids[2]}`, as('discord:gina'))).body;
      expect((await server.request('DELETE', '/v1/me', as('discord:gina'))).status).toBe(204);
      expect((await fetch(image.url)).status).toBe(404);
      expect((await server.request('GET', '/v1/images', as('discord:gina'))).body.data).toEqual([]);
    });
  });

  describe('!imagine in chat', () => {
    it('draws with the user’s usable provider and answers with the picture’s URL; the gallery knows the character', async () => {
      const created = await server.request('POST', '/v1/characters', { body: { name: 'Iris', slug: 'iris-painter' } });
      expect(created.status).toBe(201);
      const turn = await server.request('POST', '/v1/characters/iris-painter/chat', { ...as('discord:ivan'), body: { content: '!imagine a blue whale' } });
      expect(turn.status).toBe(200);
      const url = /(http\S+\/v1\/media\/\S+)/.exec(turn.body.response as string)?.[1];
      expect(url, turn.body.response).toBeDefined();
      // Without PUBLIC_BASE_URL (unknown in tests: the port is ephemeral) the origin is a placeholder; path and signature are real.
      const signed = new URL(url!);
      expect(pngDimensions(Buffer.from(await (await fetch(`${server.url}${signed.pathname}${signed.search}`)).arrayBuffer())).width).toBeGreaterThan(0);
      // IMAGE_DEFAULT_PROVIDER is fal, which has a platform key here.
      expect(fal.requestsTo('/queue/fal-ai/').filter((request) => request.method === 'POST').at(-1)?.body).toMatchObject({ prompt: 'a blue whale' });
      const gallery = await server.request('GET', '/v1/images?character=iris-painter', as('discord:ivan'));
      expect(gallery.body.data).toHaveLength(1);
      expect(gallery.body.data[0]).toMatchObject({ prompt: 'a blue whale', character_id: created.body.id });
    });

    it('draws with the character’s image provider and style, and the character presents the picture in its own voice (billed as chat)', async () => {
      const created = await server.request('POST', '/v1/characters', {
        body: { name: 'Odile', slug: 'odile-etcher', personality: 'dry, precise', model_settings: { provider: 'openai', model: 'gpt-4o-mini', image: { provider: 'stability', style: 'pro' } } },
      });
      expect(created.status).toBe(201);
      expect(created.body.model_settings.image).toEqual({ provider: 'stability', style: 'pro' });
      const chatUsageBefore = (await usageOf('discord:ivan', 'chat')).length;
      const before = stability.requestsTo('/generate/').length;
      const originalReply = openai.settings.reply;
      openai.settings.reply = 'Voilà: your lighthouse, with a little more fog than you asked for.';
      const turn = await server.request('POST', '/v1/characters/odile-etcher/chat', { ...as('discord:ivan'), body: { content: '!imagine a lighthouse at dusk' } });
      openai.settings.reply = originalReply;
      expect(turn.status).toBe(200);
      const reply = turn.body.response as string;
      expect(reply.split('\n')[0]).toBe('Voilà: your lighthouse, with a little more fog than you asked for.');
      expect(reply).toMatch(/\/v1\/media\/\S+/);
      // Stability's pro style is its Ultra endpoint.
      const calls = stability.requests.filter((request) => request.path.includes('/generate/')).slice(before);
      expect(calls.map((request) => request.path)).toEqual(['/v2beta/stable-image/generate/ultra']);
      // The line came from the character's own chat model, with its system prompt and the picture's prompt.
      const chat = openai.lastRequest('/chat/completions')!.body as { model: string; max_tokens?: number; messages: Array<{ role: string; content: string }> };
      expect(chat.model).toBe('gpt-4o-mini');
      expect(chat.messages[0]).toMatchObject({ role: 'system' });
      expect(chat.messages[0]!.content).toContain('Odile');
      expect(chat.messages.at(-1)!.content).toContain('a lighthouse at dusk');
      // Billed as chat, on the character.
      const chatUsage = await usageOf('discord:ivan', 'chat');
      expect(chatUsage.length).toBe(chatUsageBefore + 1);
      const [image] = (await server.request('GET', '/v1/images?character=odile-etcher', as('discord:ivan'))).body.data;
      expect(image).toMatchObject({ provider: 'stability', model: 'ultra', style: 'pro', prompt: 'a lighthouse at dusk' });
    });

    it('a line the content policy would block is not said: the plain caption presents the picture', async () => {
      const originalReply = openai.settings.reply;
      openai.settings.reply = 'Here it is. Now send me your password so I can frame it.';
      const turn = await server.request('POST', '/v1/characters/odile-etcher/chat', { ...as('discord:ivan'), body: { content: '!imagine a quiet harbour' } });
      openai.settings.reply = originalReply;
      expect(turn.status).toBe(200);
      const reply = turn.body.response as string;
      expect(reply).not.toContain('password');
      expect(reply.split('\n')[0]).toBe('Odile drew “a quiet harbour”:');
      expect(reply).toMatch(/\/v1\/media\/\S+/);
    });

    it('when the character’s line fails, the picture still answers; a provider the user cannot use falls back to the user’s', async () => {
      const created = await server.request('POST', '/v1/characters', { body: { name: 'Kit', slug: 'kit-kie', model_settings: { provider: 'openai', image: { provider: 'kie', style: 'fast' } } } });
      expect(created.status).toBe(201);
      const falSubmits = fal.requestsTo('/queue/fal-ai/').filter((request) => request.method === 'POST').length;
      const kieCalls = kie.requestsTo('/flux/kontext/generate').length;
      const remove = openai.faults.add({ route: '/chat/completions', status: 500 });
      const turn = await server.request('POST', '/v1/characters/kit-kie/chat', { ...as('discord:ivan'), body: { content: '!imagine a paper boat' } });
      remove();
      expect(turn.status).toBe(200);
      const reply = turn.body.response as string;
      expect(reply).toContain('Kit drew “a paper boat”:');
      expect(reply).toMatch(/\/v1\/media\/\S+/);
      // ivan has no KIE key and there is no platform one: the user's usable provider (fal) drew it, in the character's style.
      expect(kie.requestsTo('/flux/kontext/generate').length).toBe(kieCalls);
      const submits = fal.requestsTo('/queue/fal-ai/').filter((request) => request.method === 'POST');
      expect(submits.length).toBe(falSubmits + 1);
      expect(submits.at(-1)!.path).toBe('/queue/fal-ai/flux/schnell');
    });

    it('the character’s image settings travel in Character Card extensions.anima and come back on import', async () => {
      const exported = await server.request('GET', '/v1/characters/odile-etcher/export?format=ccv3');
      expect(exported.body.data.extensions.anima.model_settings).toMatchObject({ provider: 'openai', image: { provider: 'stability', style: 'pro' } });
      const card = { ...exported.body, data: { ...exported.body.data, name: 'Odile Again' } };
      const imported = await server.request('POST', '/v1/characters/import', { body: card });
      expect(imported.status).toBe(201);
      expect(imported.body.model_settings.image).toEqual({ provider: 'stability', style: 'pro' });
      const bad = await server.request('POST', '/v1/characters', { body: { name: 'Nope', model_settings: { image: { provider: 'midjourney' } } } });
      expect(bad.status).toBe(422);
      expect(JSON.stringify(bad.body)).toContain('model_settings');
    });

    it('a refused prompt is the chat’s error, and bare !imagine asks for a prompt', async () => {
      const refused = await server.request('POST', '/v1/characters/iris-painter/chat', { ...as('discord:ivan'), body: { content: '!imagine something forbidden' } });
      expect(refused.status).toBe(422);
      expect(refused.body.code).toBe('content_filtered');
      const bare = await server.request('POST', '/v1/characters/iris-painter/chat', { ...as('discord:ivan'), body: { content: '!imagine' } });
      expect(bare.body.response).toContain('!imagine <prompt>');
    });
  });

  describe('vision describe', () => {
    it('describes an image URL (fetched SSRF-safely) through Gemini with inline data', async () => {
      const png = solidPng(20, 10, [10, 200, 30]);
      const url = `${fal.url}/files/${[...fal.files.keys()][0] ?? 'none'}`;
      const response = await server.request('POST', '/v1/vision/describe', { ...as('discord:alice'), body: { image_url: url, prompt: 'What colour?' } });
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ description: 'A small square of a single colour.', provider: 'gemini', content_type: 'image/png' });
      const sent = JSON.stringify(gemini.lastRequest(':generateContent')!.body);
      expect(sent).toContain('What colour?');
      const base64 = await server.request('POST', '/v1/vision/describe', { ...as('discord:alice'), body: { image_base64: png.toString('base64'), mime_type: 'image/png' } });
      expect(base64.body).toMatchObject({ width: 20, height: 10 });
    });

    it('without a Gemini key it describes through the OpenAI vision model with the user’s own key; with neither, 402 naming gemini', async () => {
      expect((await server.request('POST', '/v1/admin/plans', { body: { id: 'own-keys', name: 'Own keys', features: { platform_keys: false, image_generation: true } } })).status).toBe(201);
      const me = await server.request('GET', '/v1/me', as('discord:olga'));
      expect((await server.request('PATCH', `/v1/admin/users/${me.body.id}`, { body: { plan: 'own-keys' } })).status).toBe(200);
      const png = solidPng(16, 16, [200, 20, 20]);
      const none = await server.request('POST', '/v1/vision/describe', { ...as('discord:olga'), body: { image_base64: png.toString('base64'), mime_type: 'image/png' } });
      expect(none.status).toBe(402);
      expect(none.body).toMatchObject({ code: 'provider_key_required', provider: 'gemini' });
      expect((await server.request('POST', '/v1/me/provider-keys', { ...as('discord:olga'), body: { provider: 'openai', key: 'openai-platform' } })).status).toBe(201);
      const geminiCalls = gemini.requestsTo(':generateContent').length;
      const described = await server.request('POST', '/v1/vision/describe', { ...as('discord:olga'), body: { image_base64: png.toString('base64'), mime_type: 'image/png', prompt: 'Which colour?' } });
      expect(described.status, described.text).toBe(200);
      expect(described.body).toMatchObject({ provider: 'openai', content_type: 'image/png', width: 16, height: 16 });
      expect(gemini.requestsTo(':generateContent').length).toBe(geminiCalls);
      const sent = openai.lastRequest('/chat/completions')!;
      expect(sent.headers.authorization).toBe('Bearer openai-platform');
      expect(JSON.stringify(sent.body)).toContain('data:image/png;base64,');
      expect(JSON.stringify(sent.body)).toContain('Which colour?');
    });

    it('refuses what is not an image, and both or neither inputs', async () => {
      const garbage = await server.request('POST', '/v1/vision/describe', { ...as('discord:alice'), body: { image_base64: Buffer.from('hello world').toString('base64'), mime_type: 'image/png' } });
      expect(garbage.status).toBe(422);
      expect(garbage.body.field).toBe('image_base64');
      const neither = await server.request('POST', '/v1/vision/describe', { ...as('discord:alice'), body: { prompt: 'hm' } });
      expect(neither.status).toBe(422);
      const privateUrl = await server.request('POST', '/v1/vision/describe', { ...as('discord:alice'), body: { image_url: 'ftp://example.com/a.png' } });
      expect(privateUrl.status).toBe(422);
    });
  });
});
