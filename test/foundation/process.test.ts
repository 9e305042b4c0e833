import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runChild, startChildServer } from '../helpers/child-server.js';
import { embeddedDataDir } from '../helpers/embedded-template.js';

const ADMIN_KEY = 'process-test-admin-key-0123456789';

describe('the server process on the embedded default', { timeout: 120_000 }, () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'anima-process-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('refuses to start on bad configuration, naming every bad variable', async () => {
    const result = await runChild(
      { DATA_DIR: dataDir, PORT: 'eighty', DATABASE_URL: 'mysql://nope', ENCRYPTION_KEY: 'too-short' },
      'src/server.ts',
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Invalid configuration');
    expect(result.stderr).toContain('PORT');
    expect(result.stderr).toContain('DATABASE_URL');
    expect(result.stderr).toContain('ENCRYPTION_KEY');
  });

  it('the bot (npm run bot runs this bundle) without DISCORD_TOKEN exits with a clear message', async () => {
    const result = await runChild({ ANIMA_API_URL: 'http://127.0.0.1:9', INTERNAL_API_KEY: 'x'.repeat(32) }, 'src/bot.ts');
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('The Discord bot cannot start');
    expect(result.stderr).toContain('DISCORD_TOKEN');
  });

  it('keeps data across a restart, and refuses a second process on the same DATA_DIR', async () => {
    // A migrated copy of the template: the real first start (initdb) is the admin-key case below.
    await embeddedDataDir(dataDir);
    const first = await startChildServer({ DATA_DIR: dataDir, ADMIN_API_KEY: ADMIN_KEY });
    let keyId: string;
    try {
      const health = await fetch(`${first.url}/health`);
      expect(health.status).toBe(200);
      const created = await fetch(`${first.url}/v1/keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'survives restarts', role: 'service' }),
      });
      expect(created.status).toBe(201);
      keyId = ((await created.json()) as { id: string }).id;

      const second = await runChild({ DATA_DIR: dataDir, ADMIN_API_KEY: ADMIN_KEY }, 'src/server.ts');
      expect(second.code).toBe(1);
      expect(second.stderr).toMatch(/already in use by process \d+/);
      // The log line written just before process.exit gets out (and runChild waits for the pipes to close, not only for the exit).
      expect(second.stdout).toContain('"msg":"could not start"');
    } finally {
      expect(await first.stop()).toBe(0);
    }

    const restarted = await startChildServer({ DATA_DIR: dataDir, ADMIN_API_KEY: ADMIN_KEY });
    try {
      const listed = await fetch(`${restarted.url}/v1/keys`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      const body = (await listed.json()) as { data: Array<{ id: string; name: string }> };
      expect(body.data.map((key) => key.id)).toContain(keyId);
    } finally {
      await restarted.stop();
    }
  });

  it('generates and prints an admin key once when ADMIN_API_KEY is unset, and that key works', async () => {
    // A real first start from an empty directory: initdb in WebAssembly, every migration.
    const freshDir = mkdtempSync(path.join(tmpdir(), 'anima-bootstrap-'));
    try {
      const first = await startChildServer({ DATA_DIR: freshDir }, 'src/server.ts', 90_000);
      const printed = /(anima_sk_[A-Za-z0-9]{8}_[A-Za-z0-9]{40})/.exec(first.stdout())?.[1];
      expect(printed).toBeDefined();
      const detailed = await fetch(`${first.url}/health/detailed`, { headers: { authorization: `Bearer ${printed}` } });
      expect(detailed.status).toBe(200);
      await first.stop();
      const second = await startChildServer({ DATA_DIR: freshDir });
      expect(second.stdout()).not.toContain('anima_sk_');
      await second.stop();
    } finally {
      rmSync(freshDir, { recursive: true, force: true });
    }
  });
});
