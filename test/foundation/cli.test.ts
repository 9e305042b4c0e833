import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOpenRouterFake, startElevenLabsFake } from '../fakes/index.js';
import { runChild, startChildServer } from '../helpers/child-server.js';

// Each CLI call is a process that opens the embedded database: slow on a loaded 2-core machine.
describe('the CLI on the embedded default', { timeout: 120_000 }, () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'anima-cli-'));
  let openrouter: Awaited<ReturnType<typeof startOpenRouterFake>>;
  let elevenlabs: Awaited<ReturnType<typeof startElevenLabsFake>>;
  const cli = (args: string[], env: Record<string, string> = {}) =>
    runChild({ DATA_DIR: dataDir, ADMIN_API_KEY: 'cli-test-admin-key-000000', ...env }, 'src/cli.ts', args, 60_000);

  beforeAll(async () => {
    openrouter = await startOpenRouterFake({ validKeys: ['sk-or-good'] });
    elevenlabs = await startElevenLabsFake({ validKeys: ['el-good'] });
  });
  afterAll(async () => {
    await openrouter?.close();
    await elevenlabs?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('migrates, seeds idempotently and creates a key that the server then accepts', async () => {
    const migrated = await cli(['migrate']);
    expect(migrated.code).toBe(0);
    expect(migrated.stdout).toContain('Migrations applied (embedded database)');

    const seeded = await cli(['seed']);
    expect(seeded.code).toBe(0);
    expect(seeded.stdout).toMatch(/created [a-z]/);
    const again = await cli(['seed']);
    expect(again.stdout).toContain('created none');

    const created = await cli(['create-key', '--name', 'bot', '--role', 'service']);
    expect(created.code).toBe(0);
    const key = /(anima_sk_\w{8}_\w{40})/.exec(created.stdout)?.[1];
    expect(key).toBeDefined();

    const server = await startChildServer({ DATA_DIR: dataDir, ADMIN_API_KEY: 'cli-test-admin-key-000000' });
    try {
      const response = await fetch(`${server.url}/v1/characters`, { headers: { authorization: `Bearer ${key}` } });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { data: unknown[] };
      expect(body.data.length).toBeGreaterThanOrEqual(3);
    } finally {
      await server.stop();
    }
  });

  it('refuses bad arguments with usage', async () => {
    expect((await cli(['create-key', '--name', 'x', '--role', 'root'])).code).toBe(2);
    const unknown = await cli(['explode']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('Usage: anima');
  });

  it('checks the configuration and each platform key against its provider', async () => {
    const good = await cli(['check'], { OPENROUTER_API_KEY: 'sk-or-good', OPENROUTER_BASE_URL: openrouter.url, ELEVENLABS_API_KEY: 'el-good', ELEVENLABS_BASE_URL: elevenlabs.url });
    expect(good.stdout).toContain('database: ok');
    expect(good.stdout).toMatch(/openrouter: platform key valid/);
    expect(good.stdout).toMatch(/elevenlabs: platform key valid/);
    expect(good.code).toBe(0);

    const bad = await cli(['check'], { OPENROUTER_API_KEY: 'sk-or-wrong', OPENROUTER_BASE_URL: openrouter.url });
    expect(bad.stdout).toMatch(/openrouter: platform key invalid/);
    expect(bad.stdout).not.toContain('sk-or-wrong');
    expect(bad.code).toBe(1);

    const badConfig = await cli(['check'], { PORT: 'x' });
    expect(badConfig.code).toBe(1);
    expect(badConfig.stderr).toContain('PORT');
  });

  it('re-embeds and rotates vault keys, both idempotent', async () => {
    const reembedded = await cli(['reembed', '--batch-size', '16']);
    expect(reembedded.code).toBe(0);
    expect(reembedded.stdout).toMatch(/Re-embedded \d+ memories; 0 left/);
    const rotated = await cli(['rotate-vault-keys']);
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toMatch(/0 failed/);
  });
});
