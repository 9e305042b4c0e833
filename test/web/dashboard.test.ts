import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { placeholderPng, writeCardsToPng } from '../../src/modules/characters/card-png.js';
import { DASHBOARD_CSP } from '../../src/modules/web/routes.js';
import { projectFile } from '../../src/infra/project-files.js';
import { startOpenRouterFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

// The dashboard end to end: the built page (web/dist) served by the real server, driven in Debian's
// headless Chromium through playwright-core, with the OpenRouter fake behind chat and the key check.
const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`test/web/dashboard.test.ts skipped: ${CHROMIUM} is absent (scripts/setup-services.sh installs Debian's chromium).`);

const STEP = 60_000;
const USER_OPENROUTER_KEY = 'sk-or-v1-dashboard-user-0123456789';
const REPLY = 'Hello traveller, the lanterns are lit and the road is long tonight';
const SHOTS = projectFile('docs', 'screenshots');
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
    openrouter = await startOpenRouterFake({ validKeys: [USER_OPENROUTER_KEY], reply: REPLY, chunkDelayMs: 120 });
    server = await startTestServer('embedded', { OPENROUTER_BASE_URL: openrouter.url, MEMORY_FORMATION_DELAY_MS: '600000' });
    const created = await server.request('POST', '/v1/keys', {
      key: server.internalKey,
      headers: { 'X-User-Id': 'discord:dashboard-tester' },
      body: { name: 'dashboard', role: 'user' },
    });
    expect(created.status).toBe(201);
    userKey = created.body.key as string;
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
    await openrouter?.close();
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
  });

  it('signs in with a user key kept in sessionStorage, never in the URL', async () => {
    await page.goto(`${server.url}/`);
    await page.getByLabel('API key').waitFor();
    await screenshots('signin');
    await page.getByLabel('API key').fill('not-a-key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    await page.getByLabel('API key').fill(userKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
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
    await screenshots('setup');
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
    await page.getByLabel('Character').selectOption({ label: 'Mira Lantern' });
    await page.getByLabel('Message').fill('Which way to the harbour?');
    await page.getByLabel('Message').press('Enter');
    const answer = page.locator('.bubble.assistant').last();
    // A partial answer is seen first (the fake sends one word every 120 ms), then the whole one.
    await page.waitForFunction(
      (full) => {
        const text = document.querySelector('.bubble.assistant:last-child')?.textContent ?? '';
        return text.length > 1 && text !== '…' && text !== full && full.startsWith(text);
      },
      REPLY,
      { polling: 20, timeout: STEP },
    );
    await expect.poll(() => answer.textContent(), { timeout: STEP }).toBe(REPLY);
    await page.getByRole('button', { name: 'Send' }).waitFor();
    expect(openrouter.requestsTo('/chat/completions').some((request) => request.headers.authorization === `Bearer ${USER_OPENROUTER_KEY}`)).toBe(true);
    await screenshots('chat');
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
    await screenshots('usage');
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: path.join(SHOTS, 'usage-dark-desktop.png') });
    await nav().getByRole('link', { name: 'Setup' }).click();
    await page.locator('[data-provider="openrouter"][data-status="valid"]').waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'setup-dark-desktop.png') });
    expect(pageErrors).toEqual([]);
  }, STEP * 2);
});
