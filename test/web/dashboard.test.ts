import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { placeholderPng, writeCardsToPng } from '../../src/modules/characters/card-png.js';
import { DASHBOARD_CSP } from '../../src/modules/web/routes.js';
import { projectFile } from '../../src/infra/project-files.js';
import { startElevenLabsFake, startFalFake, startJwksFake, startOpenRouterFake, type ElevenLabsFake, type FalFake, type JwksFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { startStripeFake, type StripeFake } from '../fakes/stripe.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

// The dashboard end to end: the built page (web/dist) served by the real server, driven in Debian's
// headless Chromium through playwright-core, with the vendor fakes behind it: OpenRouter (chat and the
// key check), fal (images), ElevenLabs (voice previews), Stripe (checkout) and an OIDC issuer.
const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`test/web/dashboard.test.ts skipped: ${CHROMIUM} is absent (scripts/setup-services.sh installs Debian's chromium).`);

const STEP = 60_000;
const USER_OPENROUTER_KEY = 'sk-or-v1-dashboard-user-0123456789';
const REPLY = 'Hello traveller, the lanterns are lit and the road is long tonight';
const SHOTS = projectFile('docs', 'screenshots');
const FAL_KEY = 'test-key-id:test-key-secret';
const OIDC_AUDIENCE = 'anima-dashboard';
const VIEWPORTS = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } } as const;

const cardData = {
  name: 'Mira Lantern',
  description: 'A lamplighter who knows every street of the old town.',
  personality: 'warm, curious',
  scenario: 'Dusk in the old town.',
  first_mes: 'Evening! Mind the puddles.',
  mes_example: '',
};
const cardPng = writeCardsToPng(placeholderPng('Mira Lantern'), {
  v2: { spec: 'chara_card_v2', spec_version: '2.0', data: cardData },
  v3: { spec: 'chara_card_v3', spec_version: '3.0', data: cardData },
});

describe.skipIf(!haveChromium)('web dashboard in headless Chromium (embedded storage)', () => {
  let openrouter: OpenAiCompatibleFake;
  let fal: FalFake;
  let elevenlabs: ElevenLabsFake;
  let stripe: StripeFake;
  let issuer: JwksFake;
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  let userKey: string;
  const pageErrors: string[] = [];
  const nav = () => page.getByRole('navigation', { name: 'Pages' });

  async function screenshots(name: string): Promise<void> {
    for (const [label, viewport] of Object.entries(VIEWPORTS)) {
      await page.setViewportSize(viewport);
      await page.screenshot({ path: path.join(SHOTS, `${name}-${label}.png`), fullPage: false });
    }
    await page.setViewportSize(VIEWPORTS.desktop);
  }

  beforeAll(async () => {
    // The page under test is the current web/ sources, built as `npm start` builds them.
    await build({ root: projectFile('web'), configFile: projectFile('web', 'vite.config.ts'), logLevel: 'warn' });
    mkdirSync(SHOTS, { recursive: true });
    [openrouter, fal, elevenlabs, stripe, issuer] = await Promise.all([
      startOpenRouterFake({ validKeys: [USER_OPENROUTER_KEY], reply: REPLY, chunkDelayMs: 120 }),
      // fal answers through its queue, two progress polls each: the page shows the job pending first.
      startFalFake({ rootMode: 'queue', queuePolls: 2, progressPolls: 2 }),
      startElevenLabsFake({ validKeys: ['eleven-platform'] }),
      startStripeFake({ validKeys: ['sk_test_anima'] }),
      startJwksFake({ audience: OIDC_AUDIENCE }),
    ]);
    server = await startTestServer('embedded', {
      OPENROUTER_BASE_URL: openrouter.url,
      MEMORY_FORMATION_DELAY_MS: '600000',
      FAL_BASE_URL: fal.url,
      FAL_QUEUE_BASE_URL: fal.queueUrl,
      FAL_API_KEY: FAL_KEY,
      IMAGE_POLL_INTERVAL_MS: '200',
      RUN_WORKERS_IN_PROCESS: 'true',
      ELEVENLABS_BASE_URL: elevenlabs.url,
      ELEVENLABS_API_KEY: 'eleven-platform',
      STRIPE_SECRET_KEY: 'sk_test_anima',
      STRIPE_API_BASE: stripe.url,
      OIDC_ISSUER: issuer.issuer,
      OIDC_AUDIENCE,
    });
    const created = await server.request('POST', '/v1/keys', {
      key: server.internalKey,
      headers: { 'X-User-Id': 'discord:dashboard-tester' },
      body: { name: 'dashboard', role: 'user' },
    });
    expect(created.status).toBe(201);
    userKey = created.body.key as string;
    // Premium allows images and voice; the market sells one pack; the catalogue has one voice.
    const promoted = await server.request('PATCH', `/v1/admin/users/${created.body.user_id as string}`, { body: { plan: 'premium' } });
    expect(promoted.status).toBe(200);
    expect((await server.request('POST', '/v1/admin/products', { body: { id: 'credits_500', kind: 'credit_pack', name: 'Lamplight pack', credits: 500, price_cents: 499 } })).status).toBe(201);
    expect((await server.request('POST', '/v1/admin/voices', { body: { name: 'lamplighter', provider: 'elevenlabs', provider_voice_id: '21m00Tcm4TlvDq8ikWAM', language: 'en', gender: 'female', description: 'Calm narration' } })).status).toBe(201);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: STEP,
    });
    page = await browser.newPage({ viewport: VIEWPORTS.desktop, locale: 'en-US' });
    page.setDefaultTimeout(STEP);
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error' && /Content Security Policy|Refused to/i.test(message.text())) pageErrors.push(message.text());
    });
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await Promise.all([openrouter?.close(), fal?.close(), elevenlabs?.close(), stripe?.close(), issuer?.close()]);
  }, STEP * 2);

  it('serves the page at / with a strict CSP and keeps /docs', async () => {
    const response = await fetch(`${server.url}/`, { headers: { accept: 'text/html' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    const html = await response.text();
    expect(html).toMatch(/<script type="module" crossorigin src="\/assets\/[^"]+\.js">/);
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).toContain('href="/docs"');
    expect((await fetch(`${server.url}/docs`)).status).toBeLessThan(400);
    expect(await (await fetch(`${server.url}/`, { headers: { accept: 'application/json' } })).json()).toMatchObject({ docs: '/docs', openapi: '/openapi.json' });
    expect((await fetch(`${server.url}/assets/..%2Fpackage.json`)).status).toBe(404);
    const setup = await fetch(`${server.url}/setup?code=ABCD-1234`, { headers: { accept: 'text/html' } });
    expect(setup.status).toBe(200);
    expect(setup.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    expect(await setup.text()).toBe(html);
  });

  it('signs in with a user key kept in sessionStorage, never in the URL', async () => {
    await page.goto(`${server.url}/`);
    await page.getByLabel('API key').waitFor();
    await screenshots('signin');
    await page.getByLabel('API key').fill('not-a-key');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('alert').waitFor();
    await page.getByLabel('API key').fill(userKey);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { name: /Setup/ }).waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('anima.apiKey'))).toBe(userKey);
    expect(page.url()).not.toContain(userKey);
    await page.locator('[data-provider="openrouter"][data-status="missing"]').waitFor();
  }, STEP * 2);

  it('adds a provider key and its light turns valid (checked by the fake)', async () => {
    await page.getByLabel('Provider', { exact: true }).selectOption('openrouter');
    await page.getByLabel('Key', { exact: true }).fill(USER_OPENROUTER_KEY);
    await page.getByRole('button', { name: 'Add key' }).click();
    await page.locator('[data-provider="openrouter"][data-status="valid"]').waitFor();
    expect(await page.locator('table').textContent()).not.toContain(USER_OPENROUTER_KEY);
    const stored = await server.request('GET', '/v1/me/provider-keys', { key: userKey });
    expect(stored.body.data).toEqual([expect.objectContaining({ provider: 'openrouter', status: 'valid' })]);
  }, STEP * 2);

  it('re-checks a stored key: the light follows the provider’s new verdict (unreachable, invalid, valid again)', async () => {
    const recheck = page.getByRole('button', { name: /^Re-check openrouter key / });
    const checksAtFake = () => openrouter.requestsTo('/key').length;
    const before = checksAtFake();
    // The provider answers 503: no verdict, the light turns unreachable (and the fake was asked).
    openrouter.faults.failNext(1, 503, { route: '/key' });
    await recheck.click();
    await page.locator('[data-provider="openrouter"][data-status="unreachable"]').waitFor();
    await page.getByRole('status').filter({ hasText: 'Re-checked openrouter key' }).filter({ hasText: 'unreachable' }).waitFor();
    expect(checksAtFake()).toBe(before + 1);
    // The provider stops accepting the key: invalid.
    openrouter.settings.validKeys = [];
    await recheck.click();
    await page.locator('[data-provider="openrouter"][data-status="invalid"]').waitFor();
    expect((await server.request('GET', '/v1/me/provider-keys', { key: userKey })).body.data[0].status).toBe('invalid');
    // Accepted again: valid, and chat below uses it.
    openrouter.settings.validKeys = [USER_OPENROUTER_KEY];
    await recheck.click();
    await page.locator('[data-provider="openrouter"][data-status="valid"]').waitFor();
    await page.getByRole('status').filter({ hasText: /: valid \(accepted by openrouter\)/ }).waitFor();
    expect(await page.locator('body').textContent()).not.toContain(USER_OPENROUTER_KEY);
    expect(checksAtFake()).toBe(before + 3);
    await screenshots('setup');
    // Turned off, the key stays stored but is not used; turned on again for the chats below.
    await page.getByRole('button', { name: /^Turn off openrouter key / }).click();
    await page.getByRole('button', { name: /^Turn on openrouter key / }).waitFor();
    await page.getByRole('cell', { name: /^inactive/ }).waitFor();
    expect((await server.request('GET', '/v1/me/provider-keys', { key: userKey })).body.data[0]).toMatchObject({ provider: 'openrouter', active: false });
    await page.getByRole('button', { name: /^Turn on openrouter key / }).click();
    await page.getByRole('button', { name: /^Turn off openrouter key / }).waitFor();
    expect((await server.request('GET', '/v1/me/provider-keys', { key: userKey })).body.data[0]).toMatchObject({ active: true, status: 'valid' });
  }, STEP * 2);

  it('imports a Character Card PNG through the file picker', async () => {
    await nav().getByRole('link', { name: 'Characters' }).click();
    await page.getByRole('heading', { name: 'Characters' }).waitFor();
    await page.getByLabel('Choose a card…').setInputFiles({ name: 'mira.png', mimeType: 'image/png', buffer: cardPng });
    await page.getByRole('status').filter({ hasText: 'Imported Mira Lantern.' }).waitFor();
    await page.getByRole('list', { name: 'Your characters' }).getByText('Mira Lantern').waitFor();
    await screenshots('characters');
  }, STEP * 2);

  it('chats with streaming: tokens show before the answer is complete', async () => {
    await nav().getByRole('link', { name: 'Chat' }).click();
    await page.getByLabel('Character', { exact: true }).selectOption({ label: 'Mira Lantern' });
    await page.getByLabel('Message').fill('Which way to the harbour?');
    await page.getByLabel('Message').press('Enter');
    const answer = page.locator('.bubble.assistant').last().locator('.text');
    // A partial answer is seen first (the fake sends one word every 120 ms), then the whole one.
    await page.waitForFunction(
      (full) => {
        const text = document.querySelector('.bubble.assistant:last-child .text')?.textContent ?? '';
        return text.length > 1 && text !== '…' && text !== full && full.startsWith(text);
      },
      REPLY,
      { polling: 20, timeout: STEP },
    );
    await expect.poll(() => answer.textContent(), { timeout: STEP }).toBe(REPLY);
    await page.getByRole('button', { name: 'Send' }).waitFor();
    expect(openrouter.requestsTo('/chat/completions').some((request) => request.headers.authorization === `Bearer ${USER_OPENROUTER_KEY}`)).toBe(true);
    // A DM turn with no memories yet says so.
    await page.locator('.bubble.assistant').last().getByText('No memories used').waitFor();
  }, STEP * 2);

  it('chat in a server channel: a user key is refused with the API’s reason, shown on the page', async () => {
    await page.getByLabel('Where').selectOption('channel');
    await page.getByLabel('Server id').fill('987654321098765432');
    await page.getByLabel('Channel id').fill('112233445566778899');
    await page.getByLabel('Message').fill('Hello, channel!');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByRole('alert').filter({ hasText: 'Only service and admin keys may place a user in a channel' }).waitFor();
    // The refused message is not left in the log as if it had been said.
    expect(await page.locator('.bubble.user').filter({ hasText: 'Hello, channel!' }).count()).toBe(0);
    expect(await page.getByLabel('Message').inputValue()).toBe('Hello, channel!');
    await page.getByLabel('Message').fill('');
    await page.getByLabel('Where').selectOption('dm');
  }, STEP * 2);

  it('memories: adds one, finds it by search with a score, edits it and deletes it', async () => {
    await nav().getByRole('link', { name: 'Memories' }).click();
    await page.getByRole('heading', { name: 'Memories' }).waitFor();
    await page.getByLabel('Character', { exact: true }).selectOption({ label: 'Mira Lantern' });
    await page.getByLabel('Add a memory about you').fill('The traveller is afraid of deep water.');
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    const list = page.getByRole('list', { name: 'Memories' });
    await list.getByText('The traveller is afraid of deep water.').waitFor();
    const stored = await server.request('GET', '/v1/characters/mira-lantern/memories', { key: userKey });
    expect(stored.body.data).toEqual([expect.objectContaining({ scope: 'user', content: 'The traveller is afraid of deep water.' })]);

    await page.getByLabel('Search memories').fill('deep water');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    const hit = page.getByRole('list', { name: 'Search results' }).getByRole('listitem').first();
    await hit.waitFor();
    expect(await hit.textContent()).toMatch(/^\d\.\d{3}\[about you\] The traveller is afraid of deep water\.$/);

    await page.getByRole('group', { name: 'Scope' }).getByText('Core', { exact: true }).click();
    await page.getByText('No memories in this scope yet.').waitFor();
    await page.getByRole('group', { name: 'Scope' }).getByText('About me', { exact: true }).click();
    await list.getByRole('button', { name: /^Edit memory/ }).click();
    await page.getByLabel('Memory text').fill('The traveller cannot swim.');
    await page.getByRole('button', { name: 'Save' }).click();
    await list.getByText('The traveller cannot swim.').waitFor();
    expect((await server.request('GET', '/v1/characters/mira-lantern/memories', { key: userKey })).body.data[0].content).toBe('The traveller cannot swim.');
    await screenshots('memories');

    page.once('dialog', (dialog) => void dialog.accept());
    await list.getByRole('button', { name: /^Delete memory/ }).click();
    await page.getByText('No memories in this scope yet.').waitFor();
    expect((await server.request('GET', '/v1/characters/mira-lantern/memories', { key: userKey })).body.data).toEqual([]);

    // Paging: 130 memories list 100 at first, the rest on "More memories"; Export takes every page.
    const pager = await server.request('POST', '/v1/characters', { key: userKey, body: { name: 'Page Turner', description: 'Remembers a great deal.' } });
    expect(pager.status).toBe(201);
    const memories = Array.from({ length: 130 }, (_, index) => ({ content: `Remembered fact number ${index + 1}.`, scope: 'user' }));
    expect((await server.request('POST', `/v1/characters/${pager.body.slug as string}/memories/import`, { key: userKey, body: { memories } })).status).toBe(200);
    await nav().getByRole('link', { name: 'Chat' }).click();
    await nav().getByRole('link', { name: 'Memories' }).click();
    await page.getByLabel('Character', { exact: true }).selectOption({ label: 'Page Turner' });
    await expect.poll(() => list.getByRole('listitem').count()).toBe(100);
    await page.getByRole('button', { name: 'More memories' }).click();
    await expect.poll(() => list.getByRole('listitem').count()).toBe(130);
    expect(await page.getByRole('button', { name: 'More memories' }).count()).toBe(0);
    const exported = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Export' }).click();
    const file = JSON.parse(readFileSync(await (await exported).path(), 'utf8')) as { memories: Array<{ content: string }> };
    expect(new Set(file.memories.map((memory) => memory.content))).toEqual(new Set(memories.map((memory) => memory.content)));
    expect((await server.request('DELETE', `/v1/characters/${pager.body.slug as string}`, { key: userKey })).status).toBe(204);
  }, STEP * 2);

  it('images: the studio sends a job, its progress shows, the picture lands in the gallery and becomes a favourite', async () => {
    await nav().getByRole('link', { name: 'Images' }).click();
    await page.getByLabel('Prompt').fill('A lamplit street in the rain');
    await page.getByLabel('Provider').selectOption('fal');
    await page.getByLabel('Style').selectOption('quality');
    await page.getByLabel('Size').selectOption('1024x768');
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('list', { name: 'Pending jobs' }).getByRole('progressbar').waitFor();
    const tile = page.getByRole('list', { name: 'Gallery' }).getByRole('listitem').first();
    const outcome = async () => ((await server.request('GET', '/v1/images', { key: userKey })).body.data as { status: string; error: unknown }[]).map((image) => `${image.status} ${JSON.stringify(image.error)}`);
    await expect.poll(outcome, { timeout: STEP }).toEqual(['succeeded null']);
    await tile.locator('img.thumb').waitFor();
    const images = await server.request('GET', '/v1/images', { key: userKey });
    expect(images.body.data).toEqual([expect.objectContaining({ status: 'succeeded', provider: 'fal', style: 'quality', prompt: 'A lamplit street in the rain', favorite: false })]);
    // The picture is the stored image's bytes (fetched with the bearer token into an object URL).
    expect(await tile.locator('img.thumb').evaluate((image: HTMLImageElement) => image.complete && image.naturalWidth > 0 && image.src.startsWith('blob:'))).toBe(true);

    await tile.getByRole('button', { name: 'Add to favourites' }).click();
    await tile.getByRole('button', { name: 'Remove from favourites', pressed: true }).waitFor();
    expect((await server.request('GET', '/v1/images?favorite=true', { key: userKey })).body.data).toHaveLength(1);
    await page.getByLabel('Favourites only').check();
    await page.locator('[data-favorite="true"]').waitFor();
    await page.getByLabel('Favourites only').uncheck();
    await screenshots('images');
  }, STEP * 2);

  it('characters: edits traits with the keyboard, greetings, voice, model and a lorebook entry', async () => {
    await nav().getByRole('link', { name: 'Characters' }).click();
    await page.getByRole('button', { name: 'Edit Mira Lantern' }).click();
    await page.getByRole('heading', { name: 'Edit Mira Lantern' }).waitFor();
    const warmth = page.getByLabel('warmth');
    await warmth.focus();
    for (let step = 0; step < 4; step += 1) await warmth.press('ArrowRight');
    await page.getByLabel('Interaction style').selectOption('playful');
    await page.getByLabel('Backstory').fill('Lit the lamps of the old town for forty years.');
    await page.getByRole('button', { name: 'Add a greeting' }).click();
    await page.getByLabel('Alternate greeting 1', { exact: true }).fill('Ah, a late walker!');
    await page.getByLabel('Voice', { exact: true }).fill('rachel');
    await page.getByLabel('Temperature').fill('0.7');
    await page.getByRole('button', { name: 'Add an entry' }).click();
    await page.getByLabel('Entry 1 keys').fill('harbour, docks');
    await page.getByLabel('Entry 1 text').fill('The harbour lies east, past the fish market.');
    await screenshots('character-editor');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved Mira Lantern.' }).waitFor();
    const saved = await server.request('GET', '/v1/characters/mira-lantern', { key: userKey });
    expect(saved.body).toMatchObject({
      interaction_style: 'playful',
      backstory: 'Lit the lamps of the old town for forty years.',
      alternate_greetings: ['Ah, a late walker!'],
      voice_id: 'rachel',
      model_settings: { temperature: 0.7 },
      character_book: { entries: [expect.objectContaining({ keys: ['harbour', 'docks'], content: 'The harbour lies east, past the fish market.' })] },
    });
    expect(saved.body.personality_traits.warmth).toBeCloseTo(0.7);

    await page.getByRole('button', { name: 'New character' }).click();
    await page.getByLabel('Name').fill('Orin Keeper');
    await page.getByLabel('Description').fill('Keeps the lighthouse.');
    await page.getByRole('button', { name: 'Create character' }).click();
    await page.getByRole('list', { name: 'Your characters' }).getByText('Orin Keeper').waitFor();
  }, STEP * 2);

  it('chat: the memories in an answer’s prompt show per answer, and a spoken answer plays from its audio_url', async () => {
    // Mira has a voice now (set in the editor above); the traveller has one memory with her.
    const added = await server.request('POST', '/v1/characters/mira-lantern/memories', { key: userKey, body: { content: 'The traveller carries a blue lantern.' } });
    expect(added.status).toBe(201);
    await nav().getByRole('link', { name: 'Chat' }).click();
    await page.getByLabel('Character', { exact: true }).selectOption({ label: 'Mira Lantern' });
    await page.getByLabel('Speak answers').check();
    await page.getByLabel('Message').fill('Do you remember my blue lantern?');
    await page.getByLabel('Message').press('Enter');
    const answer = page.locator('.bubble.assistant').last();
    await expect.poll(() => answer.locator('.text').textContent(), { timeout: STEP }).toBe(REPLY);
    await answer
      .getByText('1 memory used')
      .click()
      .catch(async (error: unknown) => {
        // Seen once in CI and never reproduced: say what the answer showed and what the server warned of.
        const warnings = server.logs.filter((line) => /"level":(40|50)/.test(line)).slice(-10);
        throw new Error(`${String(error)}\nextras shown: ${await answer.locator('.extras').textContent().catch(() => '?')}\nserver warnings:\n${warnings.join('\n')}`);
      });
    await answer.getByRole('list', { name: 'Memories used' }).getByText('The traveller carries a blue lantern.').waitFor();
    // The prompt the fake received did hold that memory.
    expect(JSON.stringify(openrouter.requestsTo('/chat/completions').at(-1)?.body)).toContain('The traveller carries a blue lantern.');
    const audio = answer.locator('audio[controls]');
    await audio.waitFor();
    const source = await audio.getAttribute('src');
    expect(source).toMatch(/\/v1\/media\/[0-9a-f-]{36}\?expires=\d+&signature=/);
    const served = await fetch(new URL(source!, server.url));
    expect(served.status).toBe(200);
    expect(served.headers.get('content-type')).toMatch(/^audio\//);
    expect((await served.arrayBuffer()).byteLength).toBeGreaterThan(100);
    // The page's own element loads it (same origin, allowed by the CSP's media-src).
    await audio.evaluate((element: HTMLAudioElement) => element.load());
    await expect.poll(() => audio.evaluate((element: HTMLAudioElement) => element.networkState !== HTMLMediaElement.NETWORK_NO_SOURCE && element.error === null), { timeout: STEP }).toBe(true);
    await screenshots('chat');

    // A character without a voice: the text answer stands and the page says why there is no audio.
    await page.getByLabel('Character', { exact: true }).selectOption({ label: 'Orin Keeper' });
    await page.getByLabel('Message').fill('Will you say it out loud?');
    await page.getByLabel('Message').press('Enter');
    const unspoken = page.locator('.bubble.assistant').last();
    await unspoken.getByRole('alert').filter({ hasText: 'No voice for this answer: Orin Keeper has no voice' }).waitFor();
    expect(await unspoken.locator('.text').textContent()).toBe(REPLY);
    expect(await unspoken.locator('audio').count()).toBe(0);
    await page.getByLabel('Speak answers').uncheck();
  }, STEP * 2);

  it('voices: filters the list and plays a preview through POST /v1/tts', async () => {
    await nav().getByRole('link', { name: 'Voices' }).click();
    await page.getByLabel('Language').selectOption('en');
    const voices = page.getByRole('list', { name: 'Voices' });
    await voices.getByText('lamplighter', { exact: true }).waitFor();
    const before = elevenlabs.requests.filter((request) => request.path.startsWith('/v1/text-to-speech')).length;
    await voices.getByRole('button', { name: 'Play a preview of lamplighter' }).click();
    await expect.poll(() => elevenlabs.requests.filter((request) => request.path.startsWith('/v1/text-to-speech')).length, { timeout: STEP }).toBe(before + 1);
    await screenshots('voices');
  }, STEP * 2);

  it('shows balance, usage by service and transactions', async () => {
    await nav().getByRole('link', { name: 'Usage & credits' }).click();
    await page.getByTestId('balance').waitFor();
    const wallet = await server.request('GET', '/v1/wallet/balance', { key: userKey });
    expect(wallet.status).toBe(200);
    expect(await page.getByTestId('balance').textContent()).toBe((wallet.body.balance as number).toLocaleString('en-US', { maximumFractionDigits: 4 }));
    await page.getByRole('heading', { name: 'Last 30 days by service' }).waitFor();
    // The chat above was recorded: each service used shows with its requests, and a total row.
    const usage = await server.request('GET', '/v1/me/usage?days=30', { key: userKey });
    expect(usage.status).toBe(200);
    const services = Object.entries(usage.body.services as Record<string, { requests: number }>)
      .filter(([, figures]) => figures.requests > 0)
      .map(([service]) => service);
    expect(services).toContain('chat');
    expect(services.length).toBeGreaterThan(0);
    await page.getByRole('rowheader', { name: 'Total' }).waitFor();
    for (const service of services) await page.getByRole('cell', { name: service, exact: true }).waitFor();
    // The per-day chart has today's chat bar, and the market's pack is on sale.
    await page.locator(`[data-testid="usage-chart"] rect[data-service="chat"][data-date="${new Date().toISOString().slice(0, 10)}"]`).waitFor();
    await page.getByRole('list', { name: 'Products' }).getByText('Lamplight pack').waitFor();
    await screenshots('usage');
    await page.getByTestId('usage-chart').scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(SHOTS, 'usage-chart-desktop.png') });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: path.join(SHOTS, 'usage-dark-desktop.png') });
    await nav().getByRole('link', { name: 'Setup' }).click();
    await page.locator('[data-provider="openrouter"][data-status="valid"]').waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'setup-dark-desktop.png') });
  }, STEP * 2);

  it('buys credits: the market pack opens Stripe Checkout', async () => {
    await page.emulateMedia({ colorScheme: 'light' });
    await nav().getByRole('link', { name: 'Usage & credits' }).click();
    // Checkout is Stripe's page: the browser is sent to the URL the API answered (intercepted here).
    await page.route('https://checkout.stripe.com/**', (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<title>Stripe Checkout</title><h1>Checkout</h1>' }));
    await page.getByRole('list', { name: 'Products' }).getByRole('listitem').filter({ hasText: 'Lamplight pack' }).getByRole('button', { name: /^Buy · \$4\.99$/ }).click();
    await page.waitForURL(/^https:\/\/checkout\.stripe\.com\/c\/pay\/cs_/);
    expect(stripe.requestsTo('/v1/checkout/sessions')).toHaveLength(1);
    expect([...stripe.sessions.values()]).toEqual([expect.objectContaining({ success_url: `${server.url}/#/usage` })]);
    await page.goto(`${server.url}/#/usage`);
    await page.getByTestId('balance').waitFor();
  }, STEP * 2);

  it('admin: the Admin page shows only to admin keys, with health, plans, keys and voices', async () => {
    expect(await nav().getByRole('link', { name: 'Admin' }).count()).toBe(0);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').fill(server.adminKey);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await nav().getByRole('link', { name: 'Admin' }).click();
    await page.getByTestId('health-status').filter({ hasText: 'ok' }).waitFor();
    await page.getByRole('cell', { name: 'Premium', exact: true }).waitFor();
    // The users list as the API gives it (newest first), the dashboard tester among them.
    const users = page.getByRole('list', { name: 'Users' });
    await users.getByRole('button', { name: /discord:dashboard-tester/ }).waitFor();
    const listed = await server.request('GET', '/v1/admin/users?limit=20');
    expect(listed.status).toBe(200);
    expect(await users.getByRole('listitem').count()).toBe((listed.body.data as unknown[]).length);
    expect(await users.getByRole('listitem').first().textContent()).toContain((listed.body.data[0].identities as string[]).join(', '));
    // Search narrows it; a click opens that user's view with the plan form.
    await page.getByLabel('Search users').fill('dashboard-tester');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await expect.poll(() => users.getByRole('listitem').count()).toBe(1);
    await users.getByRole('button', { name: /discord:dashboard-tester/ }).click();
    await expect.poll(() => page.getByLabel('Plan', { exact: true }).inputValue()).toBe('premium');
    await page.getByRole('region', { name: /^User / }).getByText(/openrouter sk-or-.*\(valid\)/).waitFor();
    await page.getByLabel('Key name').fill('second bot');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.getByRole('status').filter({ hasText: 'shown once' }).waitFor();
    await page.getByRole('cell', { name: 'second bot', exact: true }).waitFor();
    // The screenshot shows the users list and the opened user (below the sticky top bar).
    await page.getByRole('heading', { name: 'Users', exact: true }).evaluate((heading) => window.scrollTo(0, heading.getBoundingClientRect().top + window.scrollY - 80));
    await screenshots('admin');

    // Plans: an admin changes one (every field the API takes), a bad one is refused with the server's reason, a new one is offered at once.
    const premiumBefore = (await server.request('GET', '/v1/admin/plans')).body.data.find((plan: { id: string }) => plan.id === 'premium');
    await page.getByRole('button', { name: 'Edit plan Premium' }).click();
    const editor = page.getByRole('form', { name: 'Plan Premium' });
    expect(await editor.getByLabel('Daily credits').inputValue()).toBe('100');
    expect(await editor.getByLabel('Credits per 1,000 tokens').inputValue()).toBe('0.07');
    expect(await editor.getByLabel('Voice', { exact: true }).isChecked()).toBe(true);
    await editor.getByLabel('Daily credits').fill('150');
    await editor.getByLabel('Credits per 1,000 tokens').fill('0.065');
    await editor.getByLabel('Monthly price (empty: custom)').fill('12.50');
    await editor.getByLabel('Image generation').uncheck();
    await editor.getByRole('heading').evaluate((heading) => window.scrollTo(0, heading.getBoundingClientRect().top + window.scrollY - 80));
    await screenshots('admin-plan');
    await editor.getByRole('button', { name: 'Save plan' }).click();
    await page.getByRole('status').filter({ hasText: 'Plan Premium saved.' }).waitFor();
    const premium = (await server.request('GET', '/v1/admin/plans')).body.data.find((plan: { id: string }) => plan.id === 'premium');
    expect(premium).toMatchObject({ daily_credits: 150, credits_per_1k_tokens: 0.065, price: { amount_cents: 1250 }, features: { image_generation: false, voice: true } });
    await page.getByRole('row', { name: /Premium/ }).getByRole('cell', { name: '150' }).waitFor();
    // A plan id the API refuses: its problem shows, nothing is created.
    await page.getByRole('button', { name: 'New plan' }).click();
    const creating = page.getByRole('form', { name: 'New plan' });
    await creating.getByLabel('Id').fill('Bad Id');
    await creating.getByLabel('Name').fill('Bad');
    await creating.getByRole('button', { name: 'Create plan' }).click();
    await page.getByRole('alert').filter({ hasText: /lower-case letters/ }).waitFor();
    await creating.getByLabel('Id').fill('team');
    await creating.getByLabel('Name').fill('Team');
    await creating.getByLabel('Daily credits').fill('250');
    await creating.getByRole('button', { name: 'Create plan' }).click();
    await page.getByRole('status').filter({ hasText: 'Plan Team saved.' }).waitFor();
    await page.getByRole('cell', { name: 'Team', exact: true }).waitFor();
    expect((await server.request('GET', '/v1/admin/plans')).body.data.find((plan: { id: string }) => plan.id === 'team')).toMatchObject({ name: 'Team', daily_credits: 250, public: true });
    await page.getByLabel('Plan', { exact: true }).locator('option', { hasText: 'Team' }).waitFor({ state: 'attached' });
    // Voices: the registry with its inactive ones; one turned off leaves the users' list, is edited, and comes back.
    const registry = page.getByRole('table', { name: 'Voice registry' });
    await registry.getByRole('checkbox', { name: 'lamplighter active' }).waitFor();
    await registry.getByRole('checkbox', { name: 'lamplighter active' }).uncheck();
    await expect.poll(async () => (await server.request('GET', '/v1/voices')).body.data.some((voice: { name: string }) => voice.name === 'lamplighter')).toBe(false);
    expect(await registry.getByRole('checkbox', { name: 'lamplighter active' }).isChecked()).toBe(false);
    await registry.getByRole('button', { name: 'Edit voice lamplighter' }).click();
    const voiceForm = page.getByRole('form', { name: 'Voice lamplighter' });
    await voiceForm.getByLabel('Description').fill('Calm narration, lamplit streets');
    await page.getByRole('heading', { name: 'Voices', exact: true }).evaluate((heading) => window.scrollTo(0, heading.getBoundingClientRect().top + window.scrollY - 80));
    await screenshots('admin-voices');
    await voiceForm.getByRole('button', { name: 'Save voice' }).click();
    await registry.getByRole('cell', { name: 'Calm narration, lamplit streets' }).waitFor();
    await registry.getByRole('checkbox', { name: 'lamplighter active' }).check();
    await expect.poll(async () => (await server.request('GET', '/v1/voices')).body.data.find((voice: { name: string }) => voice.name === 'lamplighter')?.description).toBe('Calm narration, lamplit streets');
    // Products: the pack's price and credits changed, taken off sale (gone from the market), and a bad price refused.
    const products = page.getByRole('table', { name: 'Products' });
    await products.getByRole('button', { name: 'Edit product Lamplight pack' }).click();
    const productForm = page.getByRole('form', { name: 'Product Lamplight pack' });
    expect(await productForm.getByLabel('Price', { exact: true }).inputValue()).toBe('4.99');
    await productForm.getByLabel('Price', { exact: true }).fill('5.99');
    await productForm.getByLabel('Credits', { exact: true }).fill('600');
    await productForm.getByLabel('On sale').uncheck();
    await productForm.getByRole('button', { name: 'Save product' }).click();
    await products.getByRole('cell', { name: '5.99 USD' }).waitFor();
    expect((await server.request('GET', '/v1/admin/products')).body.data.find((product: { id: string }) => product.id === 'credits_500')).toMatchObject({ price_cents: 599, credits: 600, active: false });
    expect((await server.request('GET', '/v1/market/products', { key: null })).body.data.map((product: { id: string }) => product.id)).not.toContain('credits_500');
    await page.getByRole('button', { name: 'New product' }).click();
    const newProduct = page.getByRole('form', { name: 'New product' });
    await newProduct.getByLabel('Id').fill('credits_tiny');
    await newProduct.getByLabel('Name').fill('Tiny pack');
    await newProduct.getByLabel('Credits', { exact: true }).fill('5');
    await newProduct.getByLabel('Price', { exact: true }).fill('0.001');
    await newProduct.evaluate((form) => form.setAttribute('novalidate', ''));
    await newProduct.getByRole('button', { name: 'Create product' }).click();
    await page.getByRole('alert').filter({ hasText: /price_cents/ }).waitFor();
    expect((await server.request('GET', '/v1/admin/products')).body.data.map((product: { id: string }) => product.id)).not.toContain('credits_tiny');
    expect((await server.request('PATCH', '/v1/admin/products/credits_500', { body: { price_cents: 499, credits: 500, active: true } })).status).toBe(200);
    // Back as it was for the tests after this one.
    const restore = { daily_credits: premiumBefore.daily_credits, credits_per_1k_tokens: premiumBefore.credits_per_1k_tokens, price_cents: premiumBefore.price.amount_cents, features: { image_generation: true } };
    expect((await server.request('PATCH', '/v1/admin/plans/premium', { body: restore })).status).toBe(200);
    await page.getByRole('button', { name: 'Sign out' }).click();
  }, STEP * 3);

  it('signs in with a Discord link code opened from the bot’s link, as that Discord user', async () => {
    const issued = await server.request('POST', '/v1/link-codes', { key: server.internalKey, headers: { 'x-user-id': 'discord:linked-user' } });
    expect(issued.status).toBe(201);
    const url = new URL(issued.body.url as string);
    expect(url.searchParams.get('code')).toBe(issued.body.code);
    // The bot's link is SETUP_URL?code=…, SETUP_URL defaulting to <api>/setup: Anima serves the page there.
    await page.goto(`${server.url}/setup?code=${encodeURIComponent(issued.body.code as string)}`);
    await page.getByRole('heading', { name: /Setup/ }).waitFor();
    expect(page.url()).not.toContain('code=');
    expect(new URL(page.url()).pathname).toBe('/setup');
    const key = await page.evaluate(() => sessionStorage.getItem('anima.apiKey'));
    expect(key).toMatch(/^anima_sk_/);
    expect((await server.request('GET', '/v1/me', { key })).body.identities).toEqual(['discord:linked-user']);

    // Typed by hand, a used code is refused with a clear message.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel("Code from the bot's /setup").fill((issued.body.code as string).toLowerCase());
    await page.getByRole('button', { name: 'Use code' }).click();
    await page.getByRole('alert').filter({ hasText: 'not valid' }).waitFor();
    await screenshots('signin-code');
  }, STEP * 2);

  it('signs in with an OIDC ID token: pasted, and from the implicit flow’s redirect', async () => {
    await page.goto(`${server.url}/`);
    await page.getByRole('button', { name: /^Sign in with 127\.0\.0\.1/ }).waitFor();
    const pasted = await issuer.signToken({ sub: 'web-user-1', name: 'Wren' });
    await page.getByLabel('or paste an ID token').fill(pasted);
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.getByRole('heading', { name: /Setup/ }).waitFor();
    expect((await server.request('GET', '/v1/me', { key: pasted })).body.identities).toEqual(['oidc:web-user-1']);
    await page.getByRole('button', { name: 'Sign out' }).click();

    // The identity provider sends the browser back with #id_token=…&state=…; state and nonce must match this tab's.
    await page.evaluate(() => sessionStorage.setItem('anima.oidcState', JSON.stringify({ state: 'st-1', nonce: 'nonce-1' })));
    const redirected = await issuer.signToken({ sub: 'web-user-2', nonce: 'nonce-1' });
    await page.goto('about:blank');
    await page.goto(`${server.url}/#id_token=${redirected}&state=st-1`);
    await page.getByRole('heading', { name: /Setup/ }).waitFor();
    expect(page.url()).not.toContain('id_token');
    expect(await page.evaluate(() => sessionStorage.getItem('anima.apiKey'))).toBe(redirected);
    await page.getByRole('button', { name: 'Sign out' }).click();

    // A token whose state this tab never sent is ignored.
    const forged = await issuer.signToken({ sub: 'web-user-3', nonce: 'nonce-1' });
    await page.goto('about:blank');
    await page.goto(`${server.url}/#id_token=${forged}&state=st-1`);
    await page.getByLabel('API key').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('anima.apiKey'))).toBeNull();
  }, STEP * 2);

  it('switches themes by hand and raised no page or CSP errors on the way', async () => {
    await page.getByLabel('API key').fill(userKey);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('button', { name: /^Theme: system/ }).click();
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe('light');
    await page.getByRole('button', { name: /^Theme: light/ }).click();
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
    await nav().getByRole('link', { name: 'Memories' }).click();
    await page.getByRole('heading', { name: 'Memories' }).waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'memories-dark-desktop.png') });
    await nav().getByRole('link', { name: 'Images' }).click();
    await page.locator('img.thumb').first().waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'images-dark-desktop.png') });
    await page.setViewportSize(VIEWPORTS.phone);
    await page.screenshot({ path: path.join(SHOTS, 'images-dark-phone.png') });
    await page.setViewportSize(VIEWPORTS.desktop);
    await page.getByRole('button', { name: /^Theme: dark/ }).click();
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBeUndefined();
    expect(pageErrors).toEqual([]);
  }, STEP * 2);
});
