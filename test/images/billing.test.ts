import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFalFake, type FalFake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * Images and billing, with the plans' limits on: what billing refuses is answered by
 * POST /v1/images/generations itself (402 insufficient_credits, 402 provider_key_required, 403,
 * 429 images per day) before anything is queued — no image row, no vendor call — and a
 * platform-paid image is never seen `succeeded` before its charge is written.
 */
describe.each(backends())('images and billing (%s)', (backend) => {
  let server: TestServer;
  let fal: FalFake;

  beforeAll(async () => {
    fal = await startFalFake({ rootMode: 'queue', queuePolls: 1, progressPolls: 1, blockedWords: ['forbidden'] });
    server = await startTestServer(backend, {
      FAL_BASE_URL: fal.url,
      FAL_QUEUE_BASE_URL: fal.queueUrl,
      FAL_API_KEY: 'test-key-id:test-key-secret',
      IMAGE_POLL_INTERVAL_MS: '20',
      IMAGE_JOB_TIMEOUT_MS: '20000',
      MEMORY_FORMATION_DELAY_MS: '600000',
      RUN_WORKERS_IN_PROCESS: 'true',
      // The plans' limits (images per day) are what these tests prove.
      RATE_LIMITS_ENABLED: 'true',
    });
    const plans = [
      // Enough credits for two images at 2 credits each, a generous image count.
      { id: 'sketchbook', name: 'Sketchbook', daily_credits: 5, credits_per_image: 2, images_per_day: 100, requests_per_minute: 10_000, features: { image_generation: true, platform_keys: true } },
      // Credits to spare, two images a day.
      { id: 'two-a-day', name: 'Two a day', daily_credits: 1000, credits_per_image: 1, images_per_day: 2, requests_per_minute: 10_000, features: { image_generation: true, platform_keys: true } },
      { id: 'no-pictures', name: 'No pictures', daily_credits: 1000, credits_per_image: 1, images_per_day: 100, requests_per_minute: 10_000, features: { image_generation: false, platform_keys: true } },
      { id: 'studio', name: 'Studio', daily_credits: 1000, credits_per_image: 0.75, images_per_day: 1000, requests_per_minute: 10_000, features: { image_generation: true, platform_keys: true } },
    ];
    for (const plan of plans) expect((await server.request('POST', '/v1/admin/plans', { body: plan })).status).toBe(201);
    for (const [user, plan] of [
      ['discord:sam', 'sketchbook'],
      ['discord:tess', 'two-a-day'],
      ['discord:uma', 'no-pictures'],
      ['discord:vic', 'studio'],
      ['discord:wes', 'studio'],
      ['discord:xena', 'studio'],
    ] as const) {
      const me = await server.request('GET', '/v1/me', as(user));
      expect((await server.request('PATCH', `/v1/admin/users/${me.body.id}`, { body: { plan } })).status).toBe(200);
    }
  }, 240_000);

  afterAll(async () => {
    await server?.stop();
    await fal?.close();
  });

  const as = (user: string) => ({ key: server.internalKey, headers: { 'x-user-id': user } });
  const generate = (user: string, body: Record<string, unknown>) => server.request('POST', '/v1/images/generations', { ...as(user), body });
  const wallet = async (user: string) => (await server.request('GET', '/v1/wallet/balance', as(user))).body as { balance: number; reserved: number };
  const allImages = async (user: string) => (await server.request('GET', '/v1/images?limit=100', as(user))).body.data as Array<{ id: string; status: string; credits_charged: number }>;
  const falSubmits = () => fal.requests.filter((request) => request.method === 'POST' && request.path.startsWith('/queue/')).length;

  it('402 insufficient_credits at request time: no image row, no vendor call, nothing held', async () => {
    const before = await wallet('discord:sam');
    expect(before.balance).toBe(5);
    const submits = falSubmits();
    const response = await generate('discord:sam', { prompt: 'three foxes', provider: 'fal', n: 3 });
    expect(response.status).toBe(402);
    expect(response.body).toMatchObject({ code: 'insufficient_credits', estimated_cost: 6 });
    expect(await allImages('discord:sam')).toEqual([]);
    expect(falSubmits()).toBe(submits);
    expect(await wallet('discord:sam')).toMatchObject({ balance: 5, reserved: 0 });
    // What the credits do cover still goes through, and is charged once.
    const two = await generate('discord:sam', { prompt: 'two foxes', provider: 'fal', n: 2 });
    expect(two.status).toBe(200);
    expect(two.body.images.map((image: { credits_charged: number }) => image.credits_charged)).toEqual([2, 2]);
    expect(await wallet('discord:sam')).toMatchObject({ balance: 1, reserved: 0 });
  });

  it('429 images per day at request time; the request-time check does not use up the day’s count', async () => {
    const first = await generate('discord:tess', { prompt: 'a first heron', provider: 'fal' });
    expect(first.status).toBe(200);
    const submits = falSubmits();
    const tooMany = await generate('discord:tess', { prompt: 'two more herons', provider: 'fal', n: 2 });
    expect(tooMany.status).toBe(429);
    expect(tooMany.body).toMatchObject({ code: 'rate_limited', limit_name: 'images_per_day' });
    expect(tooMany.headers.get('retry-after')).toBeTruthy();
    expect(falSubmits()).toBe(submits);
    expect(await allImages('discord:tess')).toHaveLength(1);
    // One left today: the check took it and gave it back, the job takes it for good.
    const second = await generate('discord:tess', { prompt: 'a second heron', provider: 'fal' });
    expect(second.status).toBe(200);
    const third = await generate('discord:tess', { prompt: 'a third heron', provider: 'fal' });
    expect(third.status).toBe(429);
    expect((await allImages('discord:tess')).map((image) => image.status)).toEqual(['succeeded', 'succeeded']);
  });

  it('402 provider_key_required naming the provider and 403 for a plan without image generation, both before queueing', async () => {
    const noKey = await generate('discord:vic', { prompt: 'a kite', provider: 'stability' });
    expect(noKey.status).toBe(402);
    expect(noKey.body).toMatchObject({ code: 'provider_key_required', provider: 'stability' });
    expect(await allImages('discord:vic')).toEqual([]);

    const submits = falSubmits();
    const notInPlan = await generate('discord:uma', { prompt: 'a kite', provider: 'fal' });
    expect(notInPlan.status).toBe(403);
    expect(notInPlan.body).toMatchObject({ code: 'feature_not_in_plan', feature: 'image_generation' });
    expect(await allImages('discord:uma')).toEqual([]);
    expect(falSubmits()).toBe(submits);
    // Async requests are refused the same way, not answered 202.
    const asyncRefused = await generate('discord:uma', { prompt: 'a kite', provider: 'fal', async: true });
    expect(asyncRefused.status).toBe(403);
  });

  it('a platform-paid image is never seen succeeded before its charge is written (the charge is not 0)', async () => {
    // Hold the settlement of the charge open and look at the image meanwhile: before the fix the
    // row was already `succeeded` with credits_charged 0, and a request answering then said so.
    const billing = server.container.billing.service;
    const settle = billing.settle.bind(billing);
    let entered!: () => void;
    const settling = new Promise<void>((resolve) => (entered = resolve));
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    billing.settle = async (...args) => {
      entered();
      await gate;
      return settle(...args);
    };
    try {
      const before = await wallet('discord:vic');
      const response = await generate('discord:vic', { prompt: 'a slow ledger', provider: 'fal', async: true });
      expect(response.status).toBe(202);
      const id = response.body.images[0].id as string;
      await settling;
      const during = await server.request('GET', `/v1/images/${id}`, as('discord:vic'));
      expect(during.body.status).toBe('running');
      expect(during.body.url).toBeNull();
      open();
      let image = during.body;
      for (let attempt = 0; attempt < 400 && image.status !== 'succeeded' && image.status !== 'failed'; attempt += 1) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        image = (await server.request('GET', `/v1/images/${id}`, as('discord:vic'))).body;
      }
      expect(image.status, JSON.stringify(image.error)).toBe('succeeded');
      expect(image.credits_charged).toBe(0.75);
      expect((await wallet('discord:vic')).balance).toBeCloseTo(before.balance - 0.75, 6);
    } finally {
      open();
      billing.settle = settle;
    }
  });

  it('a pro style costs its model’s weight from the price table times the plan’s price per image', async () => {
    const before = await wallet('discord:xena');
    const pro = await generate('discord:xena', { prompt: 'a lighthouse, very detailed', provider: 'fal', style: 'pro' });
    expect(pro.status).toBe(200);
    // In config/prices.json fal-ai/flux-pro/v1.1 weighs 2 and fal-ai/flux/schnell 0.5; the studio plan sells an image at 0.75.
    expect(pro.body.images[0].credits_charged).toBeCloseTo(1.5, 6);
    const fast = await generate('discord:xena', { prompt: 'a lighthouse, a quick sketch', provider: 'fal', style: 'fast' });
    expect(fast.body.images[0].credits_charged).toBeCloseTo(0.375, 6);
    expect((await wallet('discord:xena')).balance).toBeCloseTo(before.balance - 1.875, 6);
  });

  it('a waiting request answers with the charge of every image, n images split exactly', async () => {
    const before = await wallet('discord:wes');
    const three = await generate('discord:wes', { prompt: 'three small boats', provider: 'fal', n: 3 });
    expect(three.status).toBe(200);
    const charged = three.body.images.map((image: { credits_charged: number }) => image.credits_charged) as number[];
    expect(charged.every((credits) => credits > 0)).toBe(true);
    expect(charged.reduce((sum, credits) => sum + credits, 0)).toBeCloseTo(2.25, 6);
    const after = await wallet('discord:wes');
    expect(after.balance).toBeCloseTo(before.balance - 2.25, 6);
    expect(after.reserved).toBe(0);
    // A filtered image costs nothing.
    const filtered = await generate('discord:wes', { prompt: 'something forbidden', provider: 'fal' });
    expect(filtered.status).toBe(422);
    expect((await wallet('discord:wes')).balance).toBeCloseTo(after.balance, 6);
  });
});
