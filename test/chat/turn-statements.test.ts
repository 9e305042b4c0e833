import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOpenRouterFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { countStatements } from '../helpers/statement-counter.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * Issue 14: what a warm chat turn asks of the database. The character, the user, the plan, the key
 * and the conversation with its history come from per-process caches; what is left is the memory
 * recall, the credit reservation and the turn's one write: both messages, the settle and the usage
 * row as ONE statement (data-modifying CTEs; no BEGIN, no COMMIT). The summary check asks only when
 * the threshold can have been reached. A new statement on this path fails here.
 */
describe.each(backends())('statements of a warm chat turn (%s)', (backend) => {
  let server: TestServer;
  let openrouter: OpenAiCompatibleFake;

  beforeAll(async () => {
    openrouter = await startOpenRouterFake({ reply: 'Counted and answered.' });
    server = await startTestServer(backend, { OPENROUTER_BASE_URL: openrouter.url, OPENROUTER_API_KEY: 'test-key', MEMORY_FORMATION_DELAY_MS: '600000' });
    expect((await server.request('POST', '/v1/characters', { body: { name: 'Counter', slug: 'counter' } })).status).toBe(201);
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await openrouter?.close();
  });

  const turn = (text: string) =>
    server.request('POST', '/v1/chat/completions', {
      key: server.internalKey,
      headers: { 'x-user-id': 'counted-user' },
      body: { model: 'character/counter', messages: [{ role: 'user', content: text }] },
    });

  it('costs three statements once its caches are warm: recall, reservation, and the write as one statement', async () => {
    for (const text of ['Hello there.', 'What do you count?']) expect((await turn(text)).status).toBe(200);
    const counter = countStatements(server.container.db);
    let statements: string[];
    try {
      const answered = await turn('And now?');
      expect(answered.status, answered.text).toBe(200);
      // The summary check runs just after the answer is sent.
      await new Promise((resolve) => setTimeout(resolve, 200));
      // node-postgres logs its own begin/commit; the counter adds BEGIN/COMMIT for drivers that do not.
      statements = counter.statements.includes('begin') ? counter.statements.filter((statement) => statement !== 'BEGIN' && statement !== 'COMMIT') : [...counter.statements];
    } finally {
      counter.restore();
    }
    const listing = statements.map((statement) => statement.slice(0, 80)).join('\n');
    expect(statements.some((statement) => /^(begin|commit|savepoint)/i.test(statement.trim())), listing).toBe(false);
    expect(statements.some((statement) => /from "conversations"/i.test(statement) && /^select/i.test(statement.trim()))).toBe(false);
    expect(statements.some((statement) => /^select .* from "?messages"?/i.test(statement.trim()))).toBe(false);
    // The summary check asked on the first turn; the threshold cannot be reached yet, so it does not ask again.
    expect(statements.some((statement) => /last_summarized_at AS since/i.test(statement))).toBe(false);
    // The write: messages, the reservation settled, the ledger entry, the usage row and its daily roll-up, in one statement.
    const write = statements.find((statement) => /insert into "?messages"?/i.test(statement));
    expect(write, listing).toBeDefined();
    for (const table of ['credit_reservations', 'credit_ledger', 'wallets', 'usage_events', 'usage_daily']) expect(write, table).toContain(table);
    expect(statements.length, statements.map((statement) => statement.slice(0, 80)).join('\n')).toBeLessThanOrEqual(3);
  });
});
