/** Set-up steps the benchmarks that drive a real Anima server share. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadWordVectors } from '../src/providers/embeddings/word-vectors.js';
import { startChildServer, type ChildServer } from '../test/helpers/child-server.js';

/**
 * The user's text of bench request `index`. `fixed`: one sentence with the request's number, as the
 * benchmarks asked until the tenth pass of issue 14. `varied`: six words a request from a seeded walk
 * over the built-in word table (words a server has mostly not met, as a real chat brings them: the
 * fixed sentence hid the cost of a word new to the process).
 */
export function benchQuestions(kind: 'fixed' | 'varied', fixed: (index: number) => string): (index: number) => string {
  if (kind === 'fixed') return fixed;
  const words = loadWordVectors().words.strings().filter((word, row) => row >= 300 && /^\p{L}+$/u.test(word));
  return (index) => `Tell me about ${Array.from({ length: 6 }, (_, slot) => words[((index * 6 + slot) * 7_919) % words.length]!).join(' ')}?`;
}

export interface BenchServer {
  url: string;
}

/** Creates the bench users (first request as each) and puts each on the enterprise plan: still metered and limited, but never throttled by the run. */
export async function enterpriseUsers(server: BenchServer, keys: { internalKey: string; adminKey: string }, externalIds: string[]): Promise<void> {
  for (const externalId of externalIds) {
    await fetch(`${server.url}/v1/me`, { headers: { authorization: `Bearer ${keys.internalKey}`, 'x-user-id': externalId } });
    const plan = await fetch(`${server.url}/v1/admin/users/${externalId}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${keys.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ plan: 'enterprise' }),
    });
    if (!plan.ok) throw new Error(`could not put ${externalId} on the enterprise plan: ${await plan.text()}`);
  }
}

/** The `bench` character the chat benchmarks talk to (409: an earlier run on the same PostgreSQL database made it). */
/**
 * The bench's character: by default a one-line description; `card: 'long'` gives it a card the size
 * of a real Character Card V2 (≈ 1,600 tokens of description, personality and scenario), whose
 * system prompt a turn sends, and must not re-count, every time.
 */
export async function benchCharacter(server: BenchServer, adminKey: string, options: { card?: 'short' | 'long' } = {}): Promise<void> {
  const long = options.card === 'long';
  const paragraph = (topic: string, index: number) =>
    `Bench keeps observation log ${index} about ${topic}: she notes the seeing, the hour, the instrument and what surprised her, and answers questions about it patiently, in plain words.`;
  const card = long
    ? {
        description: Array.from({ length: 36 }, (_, index) => paragraph('the moon and the planets', index)).join(' '),
        personality: Array.from({ length: 8 }, (_, index) => paragraph('her own habits', index)).join(' '),
        scenario: Array.from({ length: 6 }, (_, index) => paragraph('the observatory', index)).join(' '),
      }
    : { description: 'A calm astronomer who answers briefly.' };
  const created = await fetch(`${server.url}/v1/characters`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Bench', slug: 'bench', ...card }),
  });
  if (created.status !== 201 && created.status !== 409) throw new Error(`could not create the character: ${await created.text()}`);
}

/**
 * Gives every bench user `perUser` memories of their own and the character `perUser / 2` core ones
 * (through POST …/memories/import), so a turn's recall finds and sends a memory section, as it does
 * once a character has talked for a while. Memory words overlap the bench's questions on purpose.
 */
export async function benchMemories(server: BenchServer, keys: { internalKey: string; adminKey: string }, externalIds: string[], perUser: number): Promise<void> {
  if (perUser <= 0) return;
  const topics = ['the moon', 'Saturn\'s rings', 'a comet', 'the telescope', 'tea at night', 'a cat named Kepler', 'the Pleiades', 'eclipses', 'meteor showers', 'the Andromeda galaxy'];
  const fact = (who: string, index: number) =>
    `${who} asked about ${topics[index % topics.length]} on night ${index}; they like it when the answer names what the moon is made of, and keep a notebook ${index}.`;
  const post = async (body: unknown, headers: Record<string, string>) => {
    const response = await fetch(`${server.url}/v1/characters/bench/memories/import`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`could not import bench memories: ${response.status} ${await response.text()}`);
  };
  const core = Array.from({ length: Math.max(1, Math.floor(perUser / 2)) }, (_, index) => ({ scope: 'core', content: fact('A visitor', index), importance: 0.5, external_id: `core-${index}` }));
  await post({ memories: core }, { authorization: `Bearer ${keys.adminKey}` });
  for (const externalId of externalIds) {
    const own = Array.from({ length: perUser }, (_, index) => ({ scope: 'user', content: fact(externalId, index), importance: 0.3 + (index % 7) / 10, external_id: `own-${index}` }));
    await post({ memories: own, user_id: externalId }, { authorization: `Bearer ${keys.internalKey}` });
  }
}

export interface BenchAnima {
  server: ChildServer;
  adminKey: string;
  internalKey: string;
  /** Stops the server and starts it again on the same data directory and keys (`server` is the new one). */
  restart: () => Promise<void>;
  /** Stops the server and removes its data directory. */
  stop: () => Promise<void>;
}

/**
 * Starts Anima (dist/src/server.js, see buildAnima in bench/harness.ts) as its own process on a fresh
 * data directory (`anima-bench-<name>-…` under the temporary directory) with fresh keys; `env` adds
 * the upstream and storage settings. A loaded machine may take well over the default 30 s to start the
 * embedded database, so it is given three minutes. `checkout`: another checkout's bundle instead of
 * this one's (bench/turn-ab.ts).
 */
export async function startBenchAnima(name: string, env: Record<string, string>, checkout?: string): Promise<BenchAnima> {
  const dataDir = mkdtempSync(path.join(tmpdir(), `anima-bench-${name}-`));
  const adminKey = `admin-${randomBytes(12).toString('hex')}`;
  const internalKey = `internal-${randomBytes(12).toString('hex')}`;
  const serverEnv = { DATA_DIR: dataDir, ADMIN_API_KEY: adminKey, INTERNAL_API_KEY: internalKey, ENCRYPTION_KEY: randomBytes(32).toString('base64'), ...env };
  const start = () => startChildServer(serverEnv, 'src/server.ts', 180_000, checkout);
  const server = await start().catch((error: unknown) => {
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  });
  let running: ChildServer | undefined = server;
  const anima: BenchAnima = {
    server,
    adminKey,
    internalKey,
    restart: async () => {
      await running?.stop();
      running = undefined;
      running = anima.server = await start();
    },
    stop: async () => {
      await running?.stop();
      running = undefined;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return anima;
}
