import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOpenRouterFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { startChildServer, type ChildServer } from '../helpers/child-server.js';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/scratch-database.js';
import { backends } from '../helpers/test-server.js';
import { testRedisPrefix } from '../helpers/test-redis-prefix.js';

/** SIGKILL to a process and every descendant at once (the child is tsx; the server is its child). */
function killTree(rootPid: number): void {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const tree = [rootPid];
  for (let index = 0; index < tree.length; index += 1) for (const [pid, parent] of parents) if (parent === tree[index]) tree.push(pid);
  for (const pid of tree.reverse()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/**
 * Issue 14: the turn's writes are batched, never at the cost of durability. The server is killed
 * with SIGKILL while turns are in flight; after a restart, every turn the client got a 200 for has
 * both its message and its answer stored.
 */
describe.each(backends())('kill -9 under load on %s storage', (backend) => {
  let fake: OpenAiCompatibleFake;
  let scratch: ScratchDatabase | undefined;
  const dataDir = mkdtempSync(path.join(tmpdir(), 'anima-crash-'));
  const adminKey = `admin-${randomBytes(12).toString('hex')}`;
  const internalKey = `internal-${randomBytes(12).toString('hex')}`;
  const encryptionKey = randomBytes(32).toString('base64');
  let server: ChildServer | undefined;

  const start = () =>
    startChildServer(
      {
        DATA_DIR: dataDir,
        ADMIN_API_KEY: adminKey,
        INTERNAL_API_KEY: internalKey,
        ENCRYPTION_KEY: encryptionKey,
        OPENROUTER_BASE_URL: fake.url,
        OPENROUTER_API_KEY: 'test-key',
        MEMORY_FORMATION_DELAY_MS: '600000',
        RATE_LIMITS_ENABLED: 'false',
        ...(scratch ? { DATABASE_URL: scratch.url, REDIS_URL: process.env.TEST_REDIS_URL!, REDIS_KEY_PREFIX: testRedisPrefix() } : {}),
      },
      'src/server.ts',
      180_000,
    );

  beforeAll(async () => {
    fake = await startOpenRouterFake({ reply: 'Noted.' });
    if (backend === 'postgres') scratch = await createScratchDatabase(process.env.TEST_DATABASE_URL!, 'anima_crash');
  }, 60_000);
  afterAll(async () => {
    if (server) {
      killTree(server.process.pid!);
      await server.stop('SIGKILL');
    }
    await fake?.close();
    await scratch?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('loses no acknowledged turn', async () => {
    server = await start();
    const headers = (key: string) => ({ authorization: `Bearer ${key}`, 'content-type': 'application/json' });
    const created = await fetch(`${server.url}/v1/characters`, { method: 'POST', headers: headers(adminKey), body: JSON.stringify({ name: 'Crash', slug: 'crash' }) });
    expect(created.status).toBe(201);

    const url = server.url;
    const acknowledged: string[] = [];
    let sent = 0;
    let stop = false;
    const worker = async () => {
      while (!stop) {
        const text = `crash-turn-${(sent += 1)}`;
        try {
          const response = await fetch(`${url}/v1/chat/completions`, {
            method: 'POST',
            headers: { ...headers(internalKey), 'x-user-id': 'crash-user' },
            body: JSON.stringify({ model: 'character/crash', messages: [{ role: 'user', content: text }] }),
          });
          if (response.status === 200 && (await response.json()).choices?.[0]?.message?.content === 'Noted.') acknowledged.push(text);
        } catch {
          // the server died under this request: not acknowledged
        }
      }
    };
    const workers = Array.from({ length: 6 }, worker);
    // Under load: once some turns were acknowledged (others are in flight), the process dies.
    for (let waited = 0; acknowledged.length < 10 && waited < 60_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    await new Promise((resolve) => setTimeout(resolve, 300));
    killTree(server.process.pid!);
    await server.stop('SIGKILL');
    stop = true;
    await Promise.all(workers);
    expect(acknowledged.length).toBeGreaterThan(3);

    server = await start();
    const stored = new Map<string, number>();
    let cursor: string | undefined;
    const conversations = await (await fetch(`${server.url}/v1/conversations`, { headers: { ...headers(internalKey), 'x-user-id': 'crash-user' } })).json();
    const conversationId = conversations.data[0].id as string;
    let assistantAnswers = 0;
    for (;;) {
      const page = await (
        await fetch(`${server.url}/v1/conversations/${conversationId}/messages?limit=200${cursor ? `&cursor=${cursor}` : ''}`, { headers: { ...headers(internalKey), 'x-user-id': 'crash-user' } })
      ).json();
      for (const message of page.data as Array<{ role: string; content: string }>) {
        if (message.role === 'user') stored.set(message.content, (stored.get(message.content) ?? 0) + 1);
        if (message.role === 'assistant' && message.content === 'Noted.') assistantAnswers += 1;
      }
      if (!page.next_cursor) break;
      cursor = page.next_cursor as string;
    }
    const lost = acknowledged.filter((text) => !stored.has(text));
    expect(lost).toEqual([]);
    expect(assistantAnswers).toBeGreaterThanOrEqual(acknowledged.length);
  }, 600_000);
});
