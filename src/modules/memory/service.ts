import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import { BoundedMap } from '../../infra/bounded-map.js';
import type { Database, Executor } from '../../infra/db/database.js';
import type { JobQueue } from '../../infra/queue/index.js';
import type { Embedder } from '../../providers/embeddings/index.js';
import type { ConversationMemory, FinishedExchange, MemoryPlace, RecallResult } from './memory-port.js';
import { buildPromptSection, fuseResults, type RankedMemory } from './retrieval.js';
import * as store from './store.js';
import type { MemoryRow, MemoryScope, ScopeFilter } from './store.js';

declare module '../../infra/queue/queue.js' {
  interface JobPayloads {
    /** Form memories from the new messages of one speaker in one conversation. */
    'memory.form': {
      characterId: string;
      userId: string;
      guildId: string | null;
      channelId: string | null;
      conversationId: string;
      /** The provider of the key that paid for the chat; the job resolves a key for it again (keys never enter the queue). */
      provider: string | null;
      chatModel: string;
    };
  }
}

export type MemorySettings = Readonly<Config>['memory'];

/** Forms memories from a conversation; the formation part plugs in here (LLM or summary fallback). */
export interface MemoryFormer {
  formFromConversation(request: {
    characterId: string;
    userId: string;
    guildId: string | null;
    conversationId: string;
    /** The chat provider to ask (through the gateway); none: store the no-model summary. */
    provider: string | null;
    chatModel: string;
  }): Promise<number>;
}

export interface MemoryServiceDependencies {
  db: Database;
  embedder: Embedder;
  queue: JobQueue;
  logger: Logger;
  settings: MemorySettings;
  countTokens: (text: string) => number;
  now?: () => Date;
}

export interface SearchRequest {
  filter: ScopeFilter;
  query: string;
  limit: number;
  /**
   * A caller's own threshold: memories below it (cosine, and no full-text match of the query's
   * words) are dropped. Without it, MEMORY_MIN_RELEVANCE only orders and labels, and the answer is
   * filled up to `limit` whenever the scope holds that many.
   */
  minRelevance?: number | undefined;
  /** Measurement: only one retriever (the evaluation compares each alone with the fusion). */
  only?: 'vector' | 'text' | undefined;
  /** Measurement: no fill-up, no expansion override. */
  fill?: boolean;
  expansionWeight?: number;
  vectorWeight?: number;
}

const RECALL_FLUSH_MS = 5000;
/** `last_recalled_at` is kept to within this: a memory recalled again sooner is not rewritten (see store.touchRecalled). */
export const RECALLED_AT_RESOLUTION_MS = 10 * 60_000;
/** Memories whose `last_recalled_at` one statement writes (see flushRecalled). */
const RECALLED_AT_SLICE = 50;
/** Open formation windows a process remembers queueing a job for (each one conversation and speaker). */
const QUEUED_FORMATIONS = 20_000;
/** Memories whose last recorded recall a process remembers (so it does not send them again within the resolution). */
const RECORDED_RECALLS = 50_000;
/** Token counts of recent prompt lines: the same memories come back turn after turn, and tokenising is not free. */
const LINE_TOKEN_CACHE = 4096;
/** Scopes known to be small enough for an exact scan (see search). */
const SMALL_SCOPE_CACHE = 10_000;

/**
 * Long-term memory: hybrid retrieval over the scopes that apply to a place, and the lifecycle of
 * memories (create, change, forget). Formation is delegated to a MemoryFormer.
 */
export class MemoryService implements ConversationMemory {
  private former: MemoryFormer | undefined;
  private summaries: { maybeQueue(exchange: { conversationId: string; userId: string; provider: string | null; chatModel: string }): Promise<void> } | undefined;
  private readonly pendingRecalled = new Set<string>();
  /** Formation jobs this process queued (a closed window's id never comes again, so only the bound retires them). */
  private readonly queuedFormations = new BoundedMap<string, true>(QUEUED_FORMATIONS);
  /** When (ms) this process last recorded each memory's recall. */
  private readonly recordedRecalls = new BoundedMap<string, number>(RECORDED_RECALLS);
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly now: () => Date;
  private readonly lineTokens = new BoundedMap<string, number>(LINE_TOKEN_CACHE);
  private readonly smallScopes = new Set<string>();

  constructor(private readonly dependencies: MemoryServiceDependencies) {
    this.now = dependencies.now ?? (() => new Date());
  }

  get database(): Database {
    return this.dependencies.db;
  }

  get embedder(): Embedder {
    return this.dependencies.embedder;
  }

  setFormer(former: MemoryFormer): void {
    this.former = former;
  }

  setSummaries(summaries: { maybeQueue(exchange: { conversationId: string; userId: string; provider: string | null; chatModel: string }): Promise<void> }): void {
    this.summaries = summaries;
  }

  async start(): Promise<void> {
    await store.ensureVectorIndex(this.dependencies.db, this.dependencies.embedder.dimensions);
    this.flushTimer = setInterval(() => void this.flushRecalled(), RECALL_FLUSH_MS);
    this.flushTimer.unref();
    // Not awaited: on a large table the count takes a moment and start-up need not wait for it.
    void this.reportStaleEmbeddings();
  }

  /**
   * After a change of embedder (EMBEDDING_PROVIDER, EMBEDDING_MODEL, a new built-in table), stored
   * vectors of the old one are never compared with the new one's: those memories are found by
   * full-text and fill-up only until `anima reembed` has run. Say so at start-up, with the count.
   */
  private async reportStaleEmbeddings(): Promise<void> {
    const { db, embedder, logger } = this.dependencies;
    try {
      const stale = await store.countStaleEmbeddings(db, { model: embedder.id, dimensions: embedder.dimensions });
      if (stale > 0) {
        logger.warn(
          { stale, embedder: embedder.id },
          `${stale} memories have no vector from the configured embedder (${embedder.id}); until \`anima reembed\` (npm run cli -- reembed) has run they are found by full-text search only`,
        );
      }
    } catch (error) {
      logger.warn({ err: error }, 'could not count memories waiting for re-embedding');
    }
  }

  async close(): Promise<void> {
    if (this.flushTimer) clearInterval(this.flushTimer);
    this.flushTimer = undefined;
    await this.flushRecalled();
  }

  /** The scopes a speaker sees in a place: the character's core, their own, and the guild's when in one. */
  static scopesOf(place: Pick<MemoryPlace, 'characterId' | 'userId' | 'guildId'>): ScopeFilter {
    return { characterId: place.characterId, includeCore: true, userId: place.userId, guildId: place.guildId || undefined };
  }

  async recall(place: MemoryPlace, query: string, options: { tokenBudget?: number; limit?: number } = {}): Promise<RecallResult> {
    const { settings, countTokens } = this.dependencies;
    const limit = options.limit ?? settings.topK;
    const filter = MemoryService.scopesOf(place);
    // search() fills up with the place's most important memories (standing facts: a name, a pet)
    // when the query's words match fewer than `limit`, so a turn always sees what the scope holds.
    const ranked = await this.search({ filter, query, limit });
    const section = buildPromptSection(ranked, options.tokenBudget ?? settings.tokenBudget, (text) => this.countLineTokens(text, countTokens));
    const included = section.included;
    for (const memory of included) this.pendingRecalled.add(memory.id);
    return {
      memories: included.map((memory) => ({ id: memory.id, scope: memory.scope, content: memory.content, score: memory.score })),
      promptSection: section.text,
      promptTokens: section.tokens,
    };
  }

  /** countTokens, remembered per line text (a changed memory is a new line, so nothing goes stale). */
  private countLineTokens(text: string, countTokens: (text: string) => number): number {
    const known = this.lineTokens.get(text);
    if (known !== undefined) return known;
    const count = countTokens(text);
    this.lineTokens.set(text, count);
    return count;
  }

  /**
   * Hybrid search over exactly the scopes of `filter`: vector neighbours and full-text matches
   * (widened by the embedder's related words), fused by normalised scores and weighted per scope.
   * Small scopes are compared exactly; large ones go through HNSW with iterative scan, and a short
   * index answer is re-run exactly. Unless the caller sets `minRelevance`, the answer holds `limit`
   * memories whenever the scope does: what matches least (or has no vector of this embedder yet)
   * comes last, after the most important of the rest.
   */
  async search(request: SearchRequest, on: { db?: Executor; vector?: number[] } = {}): Promise<RankedMemory[]> {
    const { embedder, settings, logger } = this.dependencies;
    const db = on.db ?? this.dependencies.db;
    const candidates = Math.max(request.limit * 4, 40);
    const space = { model: embedder.id, dimensions: embedder.dimensions };
    const query = request.query.trim();
    if (query.length === 0) return [];
    const expansionWeight = request.expansionWeight ?? settings.expansionWeight;
    const expansion =
      embedder.expandQuery && expansionWeight > 0 && settings.expansionNeighbours > 0
        ? { words: embedder.expandQuery(query, settings.expansionNeighbours), weight: expansionWeight }
        : undefined;
    let vector: number[] | undefined = on.vector;
    if (request.only !== 'text' && !vector) {
      try {
        [vector] = await embedder.embed([query], 'query');
      } catch (error) {
        // Full-text still works without vectors: a failing embedder degrades recall, not the turn.
        logger.warn({ err: error, embedder: embedder.id }, 'could not embed a memory query; using full-text only');
      }
    }
    const fill = request.minRelevance === undefined && request.fill !== false;
    // A scope last seen at most MEMORY_EXACT_SCAN_MAX_ROWS large gets the statement without the HNSW
    // branch (planning that branch costs more than scanning a small scope); an unknown one lets the
    // statement count and choose. The answer's count keeps this up to date both ways.
    const scopeKey = `${space.model}\u0000${space.dimensions}\u0000${request.filter.characterId}\u0000${request.filter.includeCore}\u0000${request.filter.userId ?? ''}\u0000${request.filter.guildId ?? ''}`;
    // One statement: both lists, the exact-or-index decision and the fill-up (see store.recallLists).
    const lists = await store.recallLists(db, {
      filter: request.filter,
      text: request.only === 'vector' ? undefined : query,
      expansion,
      vector: vector ? { space, query: vector } : undefined,
      candidates,
      exactScanMaxRows: settings.exactScanMaxRows,
      efSearch: Math.max(candidates * 2, 100),
      fillUpTo: fill ? request.limit : undefined,
      vectorPath: this.smallScopes.has(scopeKey) ? 'exact' : 'auto',
    });
    if (vector) {
      this.smallScopes.delete(scopeKey);
      if (lists.scopeRows <= settings.exactScanMaxRows) {
        if (this.smallScopes.size >= SMALL_SCOPE_CACHE) this.smallScopes.delete(this.smallScopes.values().next().value!);
        this.smallScopes.add(scopeKey);
      }
    }
    const { vectorHits, textHits, standing, indexCameShort } = lists;
    if (indexCameShort) logger.warn({ wanted: candidates }, 'the HNSW scan came back short for a large scope; searched it exactly');
    const ranked = fuseResults(
      vectorHits,
      textHits,
      {
        weights: settings.weights,
        minRelevance: request.minRelevance ?? settings.minRelevance,
        vectorWeight: request.only === 'vector' ? 1 : request.only === 'text' ? 0 : (request.vectorWeight ?? settings.vectorWeight),
        dropIrrelevant: request.minRelevance !== undefined,
      },
      this.now(),
    ).slice(0, request.limit);
    if (ranked.length < request.limit && fill) {
      const seen = new Set(ranked.map((memory) => memory.id));
      for (const memory of standing) {
        if (ranked.length >= request.limit) break;
        if (!seen.has(memory.id)) ranked.push({ ...memory, score: 0, similarity: undefined, textRank: undefined, relevant: false });
      }
    }
    return ranked;
  }

  /**
   * The start-up warm-up's recall (src/modules/warm-up.ts): a turn's search on `db` (the warm-up's
   * transaction) in a scope that holds nothing, once as a scope not seen yet (the statement that
   * counts and may go through HNSW) and once as a known small one (the exact scan only): the two
   * statements a place's first and later turns send. The query's vector is made here, not by the
   * embedder (which may be a metered provider call); the related words are the embedder's own.
   * First of all pgvector and the stemmer are loaded (`loadRecallFunctions`), which needs no throwaway
   * character: a server whose warm-up has none still does not load them on its first recall.
   */
  async warmUp(db: Executor, place: { characterId: string; userId?: string | undefined } | undefined): Promise<void> {
    await store.loadRecallFunctions(db);
    if (!place) return;
    const { embedder, settings } = this.dependencies;
    const vector = Array.from({ length: embedder.dimensions }, (_, index) => (index === 0 ? 1 : 0));
    const request: SearchRequest = { filter: { characterId: place.characterId, includeCore: true, userId: place.userId }, query: 'What did we talk about last time, and how is the garden?', limit: settings.topK };
    await this.search(request, { db, vector });
    await this.search(request, { db, vector });
  }

  async rememberExchange(exchange: FinishedExchange): Promise<void> {
    // Coalescing: every exchange of a speaker in a conversation within one window shares a job id,
    // and the job runs one whole window after its window has closed, so no later exchange can meet a
    // finished job of the same id (BullMQ keeps finished ids and would drop it), and every exchange
    // waits at least the configured delay (between one and two windows; the windows are aligned to the
    // clock so that every replica computes the same id). A zero window: one job each, at once.
    const window = this.dependencies.settings.formationDelayMs;
    const now = Date.now();
    const bucket = window > 0 ? Math.floor(now / window) : undefined;
    const jobId = `memory-form.${exchange.conversationId}.${exchange.userId}.${bucket ?? exchange.assistantMessageId}`;
    // This process queued that window's job already: it runs once the window has closed and reads the
    // whole conversation, this exchange included, so queueing it again would only be refused as a
    // duplicate (on Redis: a script, a stream entry and a round trip per turn).
    if (!this.queuedFormations.has(jobId)) {
      await this.dependencies.queue.enqueue(
        'memory.form',
        {
          characterId: exchange.characterId,
          userId: exchange.userId,
          guildId: exchange.guildId ?? null,
          channelId: exchange.channelId ?? null,
          conversationId: exchange.conversationId,
          provider: exchange.provider ?? null,
          chatModel: exchange.chatModel,
        },
        {
          jobId,
          delayMs: bucket !== undefined ? (bucket + 2) * window - now + 50 : 0,
          attempts: 3,
          background: true,
        },
      );
      if (bucket !== undefined) this.queuedFormations.set(jobId, true);
    }
    await this.summaries?.maybeQueue({ conversationId: exchange.conversationId, userId: exchange.userId, provider: exchange.provider ?? null, chatModel: exchange.chatModel });
  }

  async consolidateNow(place: MemoryPlace & { conversationId: string; provider: string | undefined; chatModel: string }): Promise<number> {
    if (!this.former) return 0;
    return this.former.formFromConversation({
      characterId: place.characterId,
      userId: place.userId,
      guildId: place.guildId ?? null,
      conversationId: place.conversationId,
      provider: place.provider ?? null,
      chatModel: place.chatModel,
    });
  }

  async forgetUser(characterId: string, userId: string): Promise<number> {
    return store.deleteUserMemories(this.dependencies.db, characterId, userId);
  }

  /** Creates a memory with its vector (a failing embedder stores it without one; re-embed fills it in). */
  async create(input: {
    characterId: string;
    scope: MemoryScope;
    userId: string | null;
    guildId: string | null;
    content: string;
    importance?: number | undefined;
    sourceMessageIds?: string[] | undefined;
    expiresAt?: Date | null | undefined;
    metadata?: Record<string, unknown> | null | undefined;
    externalId?: string | null | undefined;
  }): Promise<MemoryRow> {
    const embedding = await this.embedDocument(input.content);
    return store.insertMemory(this.dependencies.db, {
      characterId: input.characterId,
      scope: input.scope,
      userId: input.scope === 'user' ? input.userId : null,
      guildId: input.scope === 'group' ? input.guildId : null,
      content: input.content,
      importance: input.importance ?? 0.5,
      sourceMessageIds: input.sourceMessageIds ?? [],
      expiresAt: input.expiresAt ?? null,
      embedding: embedding ?? null,
      embeddingModel: this.dependencies.embedder.id,
      metadata: input.metadata ?? null,
      externalId: input.externalId ?? null,
    });
  }

  /**
   * Stores up to a few thousand memories at once: one embedding call for all of them, multi-row
   * inserts, idempotent by external id (see store.importMemories). A failing embedder stores them
   * without vectors (re-embed fills them in).
   */
  async importMany(items: Array<Omit<store.NewMemory, 'embedding' | 'embeddingModel'>>): Promise<Array<{ id: string; status: store.ImportStatus }>> {
    let vectors: number[][] | undefined;
    try {
      vectors = items.length > 0 ? await this.dependencies.embedder.embed(items.map((item) => item.content), 'document') : [];
    } catch (error) {
      this.dependencies.logger.warn({ err: error, embedder: this.dependencies.embedder.id }, 'could not embed imported memories; stored without vectors until re-embedding');
    }
    return store.importMemories(
      this.dependencies.db,
      items.map((item, index) => ({ ...item, embedding: vectors?.[index] ?? null, embeddingModel: this.dependencies.embedder.id })),
    );
  }

  async update(
    id: string,
    change: { content?: string | undefined; importance?: number | undefined; expiresAt?: Date | null | undefined; sourceMessageIds?: string[] | undefined; metadata?: Record<string, unknown> | null | undefined },
  ): Promise<MemoryRow | undefined> {
    const embedding = change.content !== undefined ? await this.embedDocument(change.content) : undefined;
    return store.updateMemory(this.dependencies.db, id, {
      ...(change.content !== undefined ? { content: change.content, embedding: embedding ?? null, embeddingModel: this.dependencies.embedder.id } : {}),
      ...(change.importance !== undefined ? { importance: change.importance } : {}),
      ...(change.expiresAt !== undefined ? { expiresAt: change.expiresAt } : {}),
      ...(change.sourceMessageIds !== undefined ? { sourceMessageIds: change.sourceMessageIds } : {}),
      ...(change.metadata !== undefined ? { metadata: change.metadata } : {}),
    });
  }

  async remove(ids: string[]): Promise<number> {
    return store.deleteMemories(this.dependencies.db, ids);
  }

  find(id: string): Promise<MemoryRow | undefined> {
    return store.findMemory(this.dependencies.db, id);
  }

  list(filter: store.ListFilter): Promise<MemoryRow[]> {
    return store.listMemories(this.dependencies.db, filter);
  }

  private async embedDocument(content: string): Promise<number[] | undefined> {
    try {
      const [vector] = await this.dependencies.embedder.embed([content], 'document');
      return vector;
    } catch (error) {
      this.dependencies.logger.warn({ err: error, embedder: this.dependencies.embedder.id }, 'could not embed a memory; stored without a vector until re-embedding');
      return undefined;
    }
  }

  async flushRecalled(): Promise<void> {
    if (this.pendingRecalled.size === 0) return;
    const now = this.now();
    // What this process recorded within the resolution is not sent again (the statement would change nothing).
    const staleBefore = now.getTime() - RECALLED_AT_RESOLUTION_MS;
    const ids = [...this.pendingRecalled].filter((id) => (this.recordedRecalls.get(id) ?? -Infinity) <= staleBefore);
    this.pendingRecalled.clear();
    if (ids.length === 0) return;
    try {
      // In slices, each its own statement: an UPDATE of a memory also recomputes its stored tsvector,
      // ≈ 80 µs a row on the embedded database, where 640 rows at once held its thread — and every
      // turn waiting on it — for ≈ 53 ms (bench/turn-statements.ts --memories 40). Turns' statements
      // run between the slices.
      for (let start = 0; start < ids.length; start += RECALLED_AT_SLICE) {
        const slice = ids.slice(start, start + RECALLED_AT_SLICE);
        await store.touchRecalled(this.dependencies.db, slice, now, RECALLED_AT_RESOLUTION_MS);
        for (const id of slice) this.recordedRecalls.set(id, now.getTime());
      }
    } catch (error) {
      this.dependencies.logger.warn({ err: error }, 'could not record when memories were recalled');
    }
  }
}
