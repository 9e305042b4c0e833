import { and, desc, eq, inArray, isNull, lt, or, type SQL } from 'drizzle-orm';
import { sql } from '../../infra/db/sql.js';
import type { Executor } from '../../infra/db/database.js';
import { memories } from '../../infra/db/schema.js';

/**
 * SQL for the `memories` table. Vectors live in one dimensionless `vector` column; each embedder
 * dimension gets its own partial HNSW index on `embedding::vector(<dims>)`, and every vector
 * query repeats that exact expression and predicate so the planner can use the index.
 */

export type MemoryRow = typeof memories.$inferSelect;
export type MemoryScope = MemoryRow['scope'];

/** Which memories a query may see: the character's core, one user's, one guild's. */
export interface ScopeFilter {
  characterId: string;
  includeCore: boolean;
  userId?: string | undefined;
  guildId?: string | undefined;
}

export interface EmbeddingSpace {
  model: string;
  dimensions: number;
}

export interface NewMemory {
  characterId: string;
  scope: MemoryScope;
  userId: string | null;
  guildId: string | null;
  content: string;
  importance: number;
  sourceMessageIds: string[];
  expiresAt: Date | null;
  embedding: number[] | null;
  embeddingModel: string | null;
  metadata?: Record<string, unknown> | null | undefined;
  externalId?: string | null | undefined;
}

export interface ScoredRow {
  id: string;
  scope: MemoryScope;
  content: string;
  importance: number;
  userId: string | null;
  guildId: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface VectorHit extends ScoredRow {
  distance: number;
}

export interface TextHit extends ScoredRow {
  /** ts_rank_cd of the query's words plus the expansion's rank times its weight. */
  rank: number;
  /** Matches a word of the query itself (not only an expansion word). */
  matched: boolean;
}

function dimensionsLiteral(dimensions: number): SQL {
  if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > 16_000) throw new Error(`invalid vector dimensions ${dimensions}`);
  return sql.raw(String(dimensions));
}

/**
 * A query vector as a parameter in pgvector's binary form (what its `vector_recv` reads: the number
 * of dimensions and a reserved zero as 16-bit integers, then each value as a big-endian float4; a
 * value that is not a finite number is sent as 0, which pgvector would otherwise refuse). Both drivers
 * send a byte array as a binary parameter, so PostgreSQL copies the floats instead of parsing text:
 * the text form's parse was ≈ 0.15 ms of the embedded database thread per recall (`strtof` in
 * WebAssembly), and writing it ≈ 35 µs of the main thread (issue 14, tenth pass).
 */
export function vectorParam(vector: readonly number[]): Buffer {
  // Its own memory, not a slice of Node's 8 KiB pool: a pooled view would carry the whole pool
  // across to the embedded database's thread (a message copies a view's entire buffer).
  const bytes = Buffer.alloc(4 + 4 * vector.length);
  bytes.writeInt16BE(vector.length, 0);
  bytes.writeInt16BE(0, 2);
  for (let index = 0; index < vector.length; index += 1) {
    const value = vector[index]!;
    bytes.writeFloatBE(Number.isFinite(value) ? value : 0, 4 + 4 * index);
  }
  return bytes;
}

/**
 * Runs one vector comparison and one English full-text match, which load what recall needs into the
 * database backend: pgvector's library and the snowball stemmer with its stop words are loaded by a
 * backend's first use — on the embedded database ≈ 60 ms each (a WebAssembly module instantiated and
 * linked) — which the first recall after a start would otherwise wait for. Run by the memory module's
 * start-up warm-up (MemoryService.warmUp); on PostgreSQL it warms the one pooled connection it runs on.
 */
export async function loadRecallFunctions(db: Executor): Promise<void> {
  await db.execute(
    sql`SELECT (${vectorParam([1])}::vector(1) <=> ${vectorParam([1])}::vector(1)) AS distance, to_tsvector('english', 'warming up') @@ to_tsquery('english', 'warm') AS matched`,
  );
}

/** The partial HNSW index for one dimension; idempotent, run at start-up. */
export async function ensureVectorIndex(db: Executor, dimensions: number): Promise<void> {
  const dims = dimensionsLiteral(dimensions);
  await db.execute(
    sql`CREATE INDEX IF NOT EXISTS ${sql.raw(`memories_embedding_hnsw_${dimensions}`)} ON memories USING hnsw ((embedding::vector(${dims})) vector_cosine_ops) WHERE embedding_dimensions = ${dims}`,
  );
}

export function scopeCondition(filter: ScopeFilter): SQL {
  const parts: SQL[] = [];
  if (filter.includeCore) parts.push(sql`m.scope = 'core'`);
  if (filter.userId) parts.push(sql`(m.scope = 'user' AND m.user_id = ${filter.userId})`);
  if (filter.guildId) parts.push(sql`(m.scope = 'group' AND m.guild_id = ${filter.guildId})`);
  // No applicable scope matches nothing rather than everything.
  const scopes = parts.length > 0 ? sql.join(parts, sql` OR `) : sql`false`;
  return sql`m.character_id = ${filter.characterId} AND (${scopes}) AND (m.expires_at IS NULL OR m.expires_at > now())`;
}

const SCORED_COLUMNS = sql`m.id, m.scope, m.content, m.importance, m.user_id AS "userId", m.guild_id AS "guildId", m.created_at AS "createdAt", m.updated_at AS "updatedAt"`;

function rowsOf<T>(result: unknown): T[] {
  return (result as { rows: T[] }).rows;
}

function normaliseScored<T extends ScoredRow>(row: T): T {
  return { ...row, importance: Number(row.importance), createdAt: new Date(row.createdAt), updatedAt: new Date(row.updatedAt) };
}

/** How many vector-searchable rows the scope has, counting at most `cap + 1` (cheap on the scope index). */
export async function countScope(db: Executor, filter: ScopeFilter, space: EmbeddingSpace, cap: number): Promise<number> {
  const dims = dimensionsLiteral(space.dimensions);
  const result = await db.execute(
    sql`SELECT count(*)::int AS count FROM (SELECT 1 FROM memories m WHERE ${scopeCondition(filter)} AND m.embedding_dimensions = ${dims} AND m.embedding_model = ${space.model} LIMIT ${cap + 1}) capped`,
  );
  return Number(rowsOf<{ count: number }>(result)[0]?.count ?? 0);
}

export interface VectorSearchOptions {
  limit: number;
  /** Exact: every row of the scope is compared (no index). Otherwise HNSW with iterative scan. */
  exact: boolean;
  efSearch?: number;
  maxScanTuples?: number;
  /** Tests only: leave iterative scan off to show what a plain HNSW scan would miss. */
  withoutIterativeScan?: boolean;
  /** Tests and benchmarks: steer the planner to the HNSW index even where a scan would be cheaper. */
  forceIndex?: boolean;
}

/**
 * The scope's nearest rows by cosine distance. The HNSW index filters AFTER its scan, so a scope
 * that is a small part of the table would come back short; iterative scan (pgvector >= 0.8) keeps
 * scanning until `limit` rows of the scope are found or `max_scan_tuples` is reached. SET LOCAL
 * needs a transaction, which also keeps the settings off other queries of the pool.
 */
export async function vectorSearch(db: Executor, filter: ScopeFilter, space: EmbeddingSpace, query: number[], options: VectorSearchOptions): Promise<VectorHit[]> {
  const dims = dimensionsLiteral(space.dimensions);
  const queryVector = sql`${vectorParam(query)}::vector(${dims})`;
  const where = sql`${scopeCondition(filter)} AND m.embedding_dimensions = ${dims} AND m.embedding_model = ${space.model}`;
  if (options.exact) {
    // `+ 0` keeps the ORDER BY from matching the index expression: a true brute-force ranking of the scope.
    const result = await db.execute(
      sql`SELECT ${SCORED_COLUMNS}, (m.embedding::vector(${dims}) <=> ${queryVector}) AS distance FROM memories m WHERE ${where} ORDER BY (m.embedding::vector(${dims}) <=> ${queryVector}) + 0 LIMIT ${options.limit}`,
    );
    return rowsOf<VectorHit>(result).map((row) => ({ ...normaliseScored(row), distance: Number(row.distance) }));
  }
  return db.transaction(async (transaction) => {
    if (!options.withoutIterativeScan) await transaction.execute(sql`SET LOCAL hnsw.iterative_scan = relaxed_order`);
    if (options.forceIndex) {
      for (const setting of FORCE_INDEX_SETTINGS) await transaction.execute(sql.raw(`SET LOCAL ${setting}`));
    }
    await transaction.execute(sql.raw(`SET LOCAL hnsw.ef_search = ${Math.round(Math.min(Math.max(options.efSearch ?? 100, 10), 1000))}`));
    await transaction.execute(sql.raw(`SET LOCAL hnsw.max_scan_tuples = ${Math.round(Math.max(options.maxScanTuples ?? 200_000, 1000))}`));
    // relaxed_order may return neighbours slightly out of order: re-sort the materialised set.
    const result = await transaction.execute(
      sql`WITH nearest AS MATERIALIZED (SELECT ${SCORED_COLUMNS}, (m.embedding::vector(${dims}) <=> ${queryVector}) AS distance FROM memories m WHERE ${where} ORDER BY m.embedding::vector(${dims}) <=> ${queryVector} LIMIT ${options.limit}) SELECT * FROM nearest ORDER BY distance`,
    );
    return rowsOf<VectorHit>(result).map((row) => ({ ...normaliseScored(row), distance: Number(row.distance) }));
  });
}

export const FORCE_INDEX_SETTINGS = ['enable_seqscan = off', 'enable_bitmapscan = off', 'enable_sort = off'];

/** EXPLAIN of the index-path query, for tests and the benchmark to show which plan runs. */
export async function explainVectorSearch(db: Executor, filter: ScopeFilter, space: EmbeddingSpace, query: number[], limit: number, planner: string[] = []): Promise<string> {
  const dims = dimensionsLiteral(space.dimensions);
  const queryVector = sql`${vectorParam(query)}::vector(${dims})`;
  return db.transaction(async (transaction) => {
    for (const setting of planner) await transaction.execute(sql.raw(`SET LOCAL ${setting}`));
    const result = await transaction.execute(
      sql`EXPLAIN SELECT m.id FROM memories m WHERE ${scopeCondition(filter)} AND m.embedding_dimensions = ${dims} AND m.embedding_model = ${space.model} ORDER BY m.embedding::vector(${dims}) <=> ${queryVector} LIMIT ${limit}`,
    );
    return rowsOf<Record<string, string>>(result)
      .map((row) => Object.values(row).join(' '))
      .join('\n');
  });
}

/** Words of a chat message as an OR query: a turn rarely contains every word of a memory. */
export function textQueryOf(text: string): string | undefined {
  const words = queryWordsOf(text);
  return words.length > 0 ? words.join(' | ') : undefined;
}

function queryWordsOf(text: string): string[] {
  return [...new Set((text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).filter((word) => word.length >= 2))].slice(0, 32);
}

/**
 * Full-text hits that match the query's words or the related ones (as a sub-select, best first):
 * rank = the query's ts_rank_cd + weight × the related words' ts_rank_cd.
 *
 * Both queries are ORs of single words, and for such a query every cover ts_rank_cd finds is one
 * position, so its rank is 0.1 (weight D, the only weight `search_vector` has) for each position of
 * the memory holding one of the query's lexemes. Both ranks are counted that way here, from the
 * tsvector itself (`positionsRank`): ts_rank_cd's cover search (over ≈ 30–70 words with the
 * expansion) and, before that, an `unnest` per memory were most of recall's time on the embedded
 * database (issue 14, tenth and eleventh passes). Both queries are parsed once per statement.
 * `test/memory/recall-statements.test.ts` holds the rank equal to the ts_rank_cd form on the
 * evaluation set's memories and questions and on awkward texts.
 */
function expandedTextHits(filter: ScopeFilter, tsQuery: string, { words: relatedWords, weight }: TextExpansion, limit: number): SQL {
  const own = positionsRank(sql`w.lexemes`);
  const related = positionsRank(sql`r.lexemes`);
  return sql`SELECT * FROM (SELECT ${SCORED_COLUMNS}, m.search_vector @@ q.query AS matched, (${own} + ${weight}::float8 * ${related})::float8 AS rank FROM memories m, to_tsquery('english', ${tsQuery}) AS q(query), to_tsquery('english', ${`${tsQuery} | ${relatedWords.join(' | ')}`}) AS a(query), tsvector_to_array(to_tsvector('english', ${tsQuery.split(' | ').join(' ')})) AS w(lexemes), tsvector_to_array(to_tsvector('english', ${relatedWords.join(' ')})) AS r(lexemes) WHERE m.search_vector @@ a.query AND ${scopeCondition(filter)}) hits ORDER BY rank DESC, "updatedAt" DESC LIMIT ${limit}`;
}

/**
 * ts_rank_cd of an OR of single words, `lexemes` being theirs: 0.1 for each position of the memory
 * that holds one of them, as a real. Counted without a set-returning function: `setweight` marks
 * those lexemes' positions with weight A, `ts_filter` keeps only them, and in that tsvector's text
 * (`'museum':3A,9A`) each position carries one letter A — a lexeme never holds an upper-case letter
 * (every dictionary of the `english` configuration lower-cases).
 */
function positionsRank(lexemes: SQL): SQL {
  return sql`(coalesce(array_length(string_to_array(ts_filter(setweight(m.search_vector, 'A', ${lexemes}), '{a}')::text, 'A'), 1) - 1, 0)::float8 * 0.1::float4::float8)::float4`;
}

/** The expansion with its words as the query takes them; undefined when there is nothing to search with it. */
function relatedOf(expansion: TextExpansion | undefined): TextExpansion | undefined {
  if (!expansion || expansion.weight <= 0) return undefined;
  const words = queryWordsOf(expansion.words.slice(0, 64).join(' '));
  return words.length > 0 ? { words, weight: expansion.weight } : undefined;
}

/** Related words (the embedder's neighbours of the query's words) searched with a lower weight. */
export interface TextExpansion {
  words: string[];
  weight: number;
}

/**
 * Full-text hits of the scope ranked by ts_rank_cd (GIN index on the generated tsvector). With an
 * expansion, a memory may match the query's words or the related ones; its rank is the query's
 * rank plus the expansion's rank times the expansion's weight.
 */
export async function textSearch(db: Executor, filter: ScopeFilter, text: string, limit: number, expansion?: TextExpansion): Promise<TextHit[]> {
  const tsQuery = textQueryOf(text);
  if (!tsQuery) return [];
  const related = relatedOf(expansion);
  if (!related) {
    const result = await db.execute(
      sql`SELECT ${SCORED_COLUMNS}, ts_rank_cd(m.search_vector, q.query) AS rank FROM memories m, to_tsquery('english', ${tsQuery}) AS q(query) WHERE m.search_vector @@ q.query AND ${scopeCondition(filter)} ORDER BY rank DESC, m.updated_at DESC LIMIT ${limit}`,
    );
    return rowsOf<TextHit>(result).map((row) => ({ ...normaliseScored(row), rank: Number(row.rank), matched: true }));
  }
  const result = await db.execute(expandedTextHits(filter, tsQuery, related, limit));
  return rowsOf<TextHit>(result).map((row) => ({ ...normaliseScored(row), rank: Number(row.rank), matched: Boolean(row.matched) }));
}

export interface RecallListsRequest {
  filter: ScopeFilter;
  /** The text to search by full-text; undefined: no full-text list. */
  text: string | undefined;
  expansion?: TextExpansion | undefined;
  /** The query's vector in `space`; undefined: no vector list. */
  vector?: { space: EmbeddingSpace; query: number[] } | undefined;
  /** How many rows each list may return. */
  candidates: number;
  /** Scopes with at most this many vectors are compared exactly; larger ones go through HNSW. */
  exactScanMaxRows: number;
  efSearch: number;
  maxScanTuples?: number;
  /**
   * `auto` (default): the capped count decides between an exact scan and HNSW in the statement.
   * `exact`: an exact scan only, for a scope known to be small: planning the HNSW branch costs more
   * than the small scan itself on the embedded database. Exact is never less right, only slower.
   */
  vectorPath?: 'auto' | 'exact';
  /** Also return the scope's most important memories (`2 × limit`), but only when the two lists together hold fewer than `limit` distinct memories. */
  fillUpTo?: number | undefined;
}

export interface RecallLists {
  vectorHits: VectorHit[];
  textHits: TextHit[];
  /** The scope's most important memories, most important and most recent first (only when a fill-up is needed). */
  standing: ScoredRow[];
  /** The HNSW answer came back short and the scope was compared exactly instead. */
  indexCameShort: boolean;
  /** How many vectors of this embedder the scope holds (`auto`: counted up to the cap); 0 without a vector list. */
  scopeRows: number;
}

const LIST_COLUMNS = sql`id, scope, content, importance, "userId", "guildId", "createdAt", "updatedAt"`;

/**
 * Everything one recall reads, in ONE statement (one round trip; on the embedded database one
 * pass through the WebAssembly engine): the full-text list, the vector list and, when the two
 * together are short of `fillUpTo`, the scope's standing memories.
 *
 * The vector list decides in SQL what the service used to decide between statements: a capped
 * count of the scope's vectors (`scope_count`) gates an exact scan (small scopes) or an HNSW scan
 * (large ones), and an HNSW answer shorter than the scope could give is re-run exactly. The gates
 * are uncorrelated sub-selects, which PostgreSQL turns into one-time filters: a branch whose gate
 * is false is never run. The HNSW settings (iterative scan, ef_search, max_scan_tuples) are set
 * with set_config(..., is_local) in the index branch's one-time filter, which runs before the
 * index is first read, and last until the end of this statement's transaction, as SET LOCAL did.
 */
export async function recallLists(db: Executor, request: RecallListsRequest): Promise<RecallLists> {
  const statement = recallListsStatement(request);
  const lists: RecallLists = { vectorHits: [], textHits: [], standing: [], indexCameShort: false, scopeRows: 0 };
  if (!statement) return lists;
  const result = await db.execute(statement);
  type Row = ScoredRow & { kind: string; distance: number | null; rank: number | null; matched: boolean | string | null; scopeRows: number | string | null };
  // One object a row, built field by field (no spreads: up to 80 rows on every chat turn), and one
  // Date pair per memory even where both lists return it.
  const dates = new Map<string, { createdAt: Date; updatedAt: Date }>();
  for (const row of rowsOf<Row>(result)) {
    let dated = dates.get(row.id);
    if (!dated) {
      dated = { createdAt: new Date(row.createdAt), updatedAt: new Date(row.updatedAt) };
      dates.set(row.id, dated);
    }
    const { createdAt, updatedAt } = dated;
    const importance = Number(row.importance);
    if (row.kind === 'text') {
      const matched = row.matched === true || row.matched === 'true' || row.matched === 't';
      lists.textHits.push({ id: row.id, scope: row.scope, content: row.content, importance, userId: row.userId, guildId: row.guildId, createdAt, updatedAt, rank: Number(row.rank), matched });
    } else if (row.kind === 'standing') {
      lists.standing.push({ id: row.id, scope: row.scope, content: row.content, importance, userId: row.userId, guildId: row.guildId, createdAt, updatedAt });
    } else {
      if (row.kind === 'vector-fallback') lists.indexCameShort = true;
      lists.scopeRows = Number(row.scopeRows ?? 0);
      lists.vectorHits.push({ id: row.id, scope: row.scope, content: row.content, importance, userId: row.userId, guildId: row.guildId, createdAt, updatedAt, distance: Number(row.distance) });
    }
  }
  // UNION ALL promises no order: each list gets its own statement's order back (stable sorts).
  lists.vectorHits.sort((left, right) => left.distance - right.distance);
  lists.textHits.sort((left, right) => right.rank - left.rank || right.updatedAt.getTime() - left.updatedAt.getTime());
  lists.standing.sort((left, right) => right.importance - left.importance || right.updatedAt.getTime() - left.updatedAt.getTime());
  return lists;
}

/** The statement of recallLists (exported for EXPLAIN in tests); undefined when there is nothing to read. */
export function recallListsStatement(request: RecallListsRequest): SQL | undefined {
  const { filter } = request;
  const ctes: SQL[] = [];
  const outputs: SQL[] = [];
  const nothing = sql`NULL::float8 AS distance, NULL::float8 AS rank, NULL::boolean AS matched, NULL::int AS "scopeRows"`;
  /** The CTEs of the lists the fill-up is gated on. */
  const listNames: string[] = [];
  if (request.vector) {
    const { space, query } = request.vector;
    const dims = dimensionsLiteral(space.dimensions);
    // The query vector is sent once, as a CTE every comparison reads: each parameter is read on its
    // own, and the statement used to carry the vector two to four times (issue 14, tenth pass). An
    // uncorrelated sub-select is evaluated once, before the scans, and the HNSW index still orders by it.
    ctes.push(sql`query_vector AS (SELECT ${vectorParam(query)}::vector(${dims}) AS v)`);
    const queryVector = () => sql`(SELECT v FROM query_vector)`;
    const where = sql`${scopeCondition(filter)} AND m.embedding_dimensions = ${dims} AND m.embedding_model = ${space.model}`;
    const cap = Math.max(request.exactScanMaxRows, request.candidates) + 1;
    const exactMax = request.exactScanMaxRows;
    const candidates = request.candidates;
    const efSearch = String(Math.round(Math.min(Math.max(request.efSearch, 10), 1000)));
    const maxScanTuples = String(Math.round(Math.max(request.maxScanTuples ?? 200_000, 1000)));
    if (request.vectorPath === 'exact') {
      // The window counts every row of the scope before ORDER BY and LIMIT: the scan reads them all anyway.
      ctes.push(
        sql`vector_hits AS MATERIALIZED (SELECT 'vector'::text AS kind, ${SCORED_COLUMNS}, (m.embedding::vector(${dims}) <=> ${queryVector()}) AS distance, (count(*) OVER ())::int AS "scopeRows" FROM memories m WHERE ${where} ORDER BY (m.embedding::vector(${dims}) <=> ${queryVector()}) + 0 LIMIT ${candidates})`,
      );
    } else {
      ctes.push(sql`scope_count AS (SELECT count(*)::int AS n FROM (SELECT 1 FROM memories m WHERE ${where} LIMIT ${cap}) capped)`);
      ctes.push(
        sql`index_hits AS MATERIALIZED (SELECT ${SCORED_COLUMNS}, (m.embedding::vector(${dims}) <=> ${queryVector()}) AS distance FROM memories m WHERE (SELECT n FROM scope_count) > ${exactMax} AND (SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true) || set_config('hnsw.ef_search', ${efSearch}, true) || set_config('hnsw.max_scan_tuples', ${maxScanTuples}, true)) IS NOT NULL AND ${where} ORDER BY m.embedding::vector(${dims}) <=> ${queryVector()} LIMIT ${candidates})`,
      );
      // `+ 0` keeps the ORDER BY from matching the index expression: a true brute-force ranking of the scope.
      ctes.push(
        sql`exact_hits AS MATERIALIZED (SELECT ${SCORED_COLUMNS}, (m.embedding::vector(${dims}) <=> ${queryVector()}) AS distance FROM memories m WHERE (SELECT n FROM scope_count) > 0 AND ((SELECT n FROM scope_count) <= ${exactMax} OR (SELECT count(*) FROM index_hits) < least(${candidates}::int, (SELECT n FROM scope_count))) AND ${where} ORDER BY (m.embedding::vector(${dims}) <=> ${queryVector()}) + 0 LIMIT ${candidates})`,
      );
      ctes.push(
        sql`vector_hits AS (SELECT 'vector'::text AS kind, ${LIST_COLUMNS}, distance, (SELECT n FROM scope_count) AS "scopeRows" FROM index_hits WHERE (SELECT count(*) FROM index_hits) >= least(${candidates}::int, (SELECT n FROM scope_count)) UNION ALL SELECT CASE WHEN (SELECT n FROM scope_count) > ${exactMax} THEN 'vector-fallback' ELSE 'vector' END, ${LIST_COLUMNS}, distance, (SELECT n FROM scope_count) FROM exact_hits)`,
      );
    }
    outputs.push(sql`SELECT kind, ${LIST_COLUMNS}, distance, NULL::float8 AS rank, NULL::boolean AS matched, "scopeRows" FROM vector_hits`);
    listNames.push('vector_hits');
  }
  const tsQuery = request.text === undefined ? undefined : textQueryOf(request.text);
  if (tsQuery) {
    const related = relatedOf(request.expansion);
    if (!related) {
      // ts_rank_cd is a real: through text to float8 gives the same number a real column gave the driver.
      ctes.push(
        sql`text_hits AS MATERIALIZED (SELECT ${SCORED_COLUMNS}, ts_rank_cd(m.search_vector, q.query)::text::float8 AS rank, true AS matched FROM memories m, to_tsquery('english', ${tsQuery}) AS q(query) WHERE m.search_vector @@ q.query AND ${scopeCondition(filter)} ORDER BY rank DESC, m.updated_at DESC LIMIT ${request.candidates})`,
      );
    } else {
      ctes.push(sql`text_hits AS MATERIALIZED (${expandedTextHits(filter, tsQuery, related, request.candidates)})`);
    }
    outputs.push(sql`SELECT 'text'::text AS kind, ${LIST_COLUMNS}, NULL::float8 AS distance, rank, matched, NULL::int AS "scopeRows" FROM text_hits`);
    listNames.push('text_hits');
  }
  if (request.fillUpTo !== undefined && request.fillUpTo > 0) {
    // Each list holds a memory at most once, so one list with `fillUpTo` rows already fills the answer:
    // those counts come first and spare the union's de-duplication on most turns (an AND of one-time
    // filters stops at the first false one).
    const lists = listNames.map((name) => sql.raw(name));
    const listCounts = lists.map((list) => sql` AND (SELECT count(*) FROM ${list}) < ${request.fillUpTo}`);
    const union = sql.join(lists.map((list) => sql`SELECT id FROM ${list}`), sql` UNION `);
    const gate = lists.length > 0 ? sql`${sql.join(listCounts, sql``)} AND (SELECT count(*) FROM (${union}) listed) < ${request.fillUpTo}` : sql``;
    ctes.push(
      sql`standing AS MATERIALIZED (SELECT ${SCORED_COLUMNS} FROM memories m WHERE ${scopeCondition(filter)}${gate} ORDER BY m.importance DESC, m.updated_at DESC LIMIT ${request.fillUpTo * 2})`,
    );
    outputs.push(sql`SELECT 'standing'::text AS kind, ${LIST_COLUMNS}, ${nothing} FROM standing`);
  }
  if (outputs.length === 0) return undefined;
  return sql`WITH ${sql.join(ctes, sql`, `)} ${sql.join(outputs, sql` UNION ALL `)}`;
}

/**
 * The scope's most important memories regardless of the query (standing facts: a name, a pet),
 * most important and most recent first.
 */
export async function standingMemories(db: Executor, filter: ScopeFilter, minImportance: number, limit: number): Promise<ScoredRow[]> {
  const result = await db.execute(
    sql`SELECT ${SCORED_COLUMNS} FROM memories m WHERE ${scopeCondition(filter)} AND m.importance >= ${minImportance} ORDER BY m.importance DESC, m.updated_at DESC LIMIT ${limit}`,
  );
  return rowsOf<ScoredRow>(result).map((row) => normaliseScored(row));
}

/** The row a new memory becomes (the embedding's model and size only when it has one). */
function memoryValues(memory: NewMemory): typeof memories.$inferInsert {
  return {
    characterId: memory.characterId,
    scope: memory.scope,
    userId: memory.userId,
    guildId: memory.guildId,
    content: memory.content,
    importance: memory.importance,
    sourceMessageIds: memory.sourceMessageIds,
    expiresAt: memory.expiresAt,
    embedding: memory.embedding,
    embeddingModel: memory.embedding ? memory.embeddingModel : null,
    embeddingDimensions: memory.embedding ? memory.embedding.length : null,
    metadata: memory.metadata ?? null,
    externalId: memory.externalId ?? null,
  };
}

export async function insertMemory(db: Executor, memory: NewMemory): Promise<MemoryRow> {
  const [row] = await db
    .insert(memories)
    .values(memoryValues(memory))
    .returning();
  return row!;
}

export type ImportStatus = 'created' | 'updated' | 'unchanged';

/**
 * Stores many memories in multi-row statements. A memory with an external id that already exists
 * in its character and scope (same user or guild) is updated when its content, importance,
 * metadata or expiry differ, and left alone otherwise: importing the same batch twice changes nothing.
 */
export async function importMemories(db: Executor, rows: NewMemory[]): Promise<Array<{ id: string; status: ImportStatus }>> {
  const results = new Array<{ id: string; status: ImportStatus }>(rows.length);
  const CHUNK = 500;
  for (let start = 0; start < rows.length; start += CHUNK) {
    const chunk = rows.slice(start, start + CHUNK);
    const values = chunk.map(memoryValues);
    const changed = await db
      .insert(memories)
      .values(values)
      .onConflictDoUpdate({
        target: [memories.characterId, memories.scope, memories.userId, memories.guildId, memories.externalId],
        targetWhere: sql`external_id IS NOT NULL`,
        set: {
          content: sql`excluded.content`,
          importance: sql`excluded.importance`,
          metadata: sql`excluded.metadata`,
          expiresAt: sql`excluded.expires_at`,
          embedding: sql`excluded.embedding`,
          embeddingModel: sql`excluded.embedding_model`,
          embeddingDimensions: sql`excluded.embedding_dimensions`,
          updatedAt: sql`now()`,
        },
        setWhere: sql`(${memories.content}, ${memories.importance}, ${memories.metadata}, ${memories.expiresAt}) IS DISTINCT FROM (excluded.content, excluded.importance, excluded.metadata, excluded.expires_at)`,
      })
      .returning({ id: memories.id, externalId: memories.externalId, scope: memories.scope, userId: memories.userId, guildId: memories.guildId, inserted: sql<boolean>`(xmax = 0)` });
    // RETURNING gives inserted and updated rows in input order; unchanged ones are looked up.
    const keyOf = (row: { scope: string; userId: string | null; guildId: string | null; externalId?: string | null | undefined }) =>
      `${row.scope}\u0000${row.userId ?? ''}\u0000${row.guildId ?? ''}\u0000${row.externalId ?? ''}`;
    const byExternal = new Map(changed.filter((row) => row.externalId !== null).map((row) => [keyOf(row), row]));
    let plain = changed.filter((row) => row.externalId === null);
    const missing = chunk.filter((memory) => memory.externalId && !byExternal.has(keyOf(memory)));
    const existing = new Map<string, string>();
    if (missing.length > 0) {
      const found = await db
        .select({ id: memories.id, externalId: memories.externalId, scope: memories.scope, userId: memories.userId, guildId: memories.guildId })
        .from(memories)
        .where(and(eq(memories.characterId, chunk[0]!.characterId), inArray(memories.externalId, missing.map((memory) => memory.externalId!))));
      for (const row of found) existing.set(keyOf(row), row.id);
    }
    for (const [offset, memory] of chunk.entries()) {
      if (!memory.externalId) {
        const [row] = plain;
        plain = plain.slice(1);
        results[start + offset] = { id: row!.id, status: 'created' };
        continue;
      }
      const row = byExternal.get(keyOf(memory));
      if (row) {
        results[start + offset] = { id: row.id, status: String(row.inserted) === 'true' ? 'created' : 'updated' };
      } else {
        const id = existing.get(keyOf(memory));
        if (!id) throw new Error(`imported memory ${memory.externalId} was neither stored nor found`);
        results[start + offset] = { id, status: 'unchanged' };
      }
    }
  }
  return results;
}

export interface MemoryChange {
  content?: string;
  importance?: number;
  expiresAt?: Date | null;
  embedding?: number[] | null;
  embeddingModel?: string | null;
  sourceMessageIds?: string[];
  metadata?: Record<string, unknown> | null;
}

export async function updateMemory(db: Executor, id: string, change: MemoryChange): Promise<MemoryRow | undefined> {
  const values: Partial<typeof memories.$inferInsert> = { updatedAt: new Date() };
  if (change.content !== undefined) values.content = change.content;
  if (change.importance !== undefined) values.importance = change.importance;
  if (change.expiresAt !== undefined) values.expiresAt = change.expiresAt;
  if (change.sourceMessageIds !== undefined) values.sourceMessageIds = change.sourceMessageIds;
  if (change.metadata !== undefined) values.metadata = change.metadata;
  if (change.embedding !== undefined) {
    values.embedding = change.embedding;
    values.embeddingModel = change.embedding ? (change.embeddingModel ?? null) : null;
    values.embeddingDimensions = change.embedding ? change.embedding.length : null;
  }
  const [row] = await db.update(memories).set(values).where(eq(memories.id, id)).returning();
  return row;
}

export async function findMemory(db: Executor, id: string): Promise<MemoryRow | undefined> {
  const [row] = await db.select().from(memories).where(eq(memories.id, id)).limit(1);
  return row;
}

export async function deleteMemories(db: Executor, ids: string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const rows = await db.delete(memories).where(inArray(memories.id, ids)).returning({ id: memories.id });
  return rows.length;
}

export async function deleteUserMemories(db: Executor, characterId: string | undefined, userId: string): Promise<number> {
  const condition = characterId
    ? and(eq(memories.characterId, characterId), eq(memories.scope, 'user'), eq(memories.userId, userId))
    : eq(memories.userId, userId);
  const rows = await db.delete(memories).where(condition).returning({ id: memories.id });
  return rows.length;
}

export interface ListFilter {
  characterId?: string | undefined;
  scope?: MemoryScope | undefined;
  userId?: string | undefined;
  guildId?: string | undefined;
  /** A user's own view: core memories plus their own user-scope memories. */
  visibleToUserId?: string | undefined;
  before?: { createdAt: Date; id: string } | undefined;
  limit: number;
}

/** Newest first, keyset-paginated on (created_at, id). */
export async function listMemories(db: Executor, filter: ListFilter): Promise<MemoryRow[]> {
  const conditions: SQL[] = [];
  if (filter.characterId) conditions.push(eq(memories.characterId, filter.characterId));
  if (filter.scope) conditions.push(eq(memories.scope, filter.scope));
  if (filter.userId) conditions.push(eq(memories.userId, filter.userId));
  if (filter.guildId) conditions.push(eq(memories.guildId, filter.guildId));
  if (filter.visibleToUserId) {
    conditions.push(or(eq(memories.scope, 'core'), and(eq(memories.scope, 'user'), eq(memories.userId, filter.visibleToUserId)))!);
  }
  conditions.push(sql`(${memories.expiresAt} IS NULL OR ${memories.expiresAt} > now())`);
  if (filter.before) {
    const { createdAt, id } = filter.before;
    // Cursors carry milliseconds; the column has microseconds, so both sides compare truncated.
    conditions.push(sql`(date_trunc('milliseconds', ${memories.createdAt}), ${memories.id}) < (${createdAt.toISOString()}::timestamptz, ${id}::uuid)`);
  }
  return db
    .select()
    .from(memories)
    .where(and(...conditions))
    .orderBy(sql`date_trunc('milliseconds', ${memories.createdAt}) DESC`, desc(memories.id))
    .limit(filter.limit);
}

/** Every memory of one user (for export), any character. */
export async function memoriesOfUser(db: Executor, userId: string): Promise<MemoryRow[]> {
  return db.select().from(memories).where(eq(memories.userId, userId)).orderBy(desc(memories.createdAt));
}

/**
 * Records that memories were recalled at `at`, to within `resolutionMs`: a row whose time is more
 * recent than that is left as it is. Every rewrite of a memory writes a new row version and, off a
 * full page, a new entry in each of the table's indexes (HNSW and full-text included); the same
 * memories come back turn after turn, so without the resolution a busy scope rewrote them all every
 * few seconds (on the embedded database, ≈ 75 ms of its one thread for a scope of 60). The table
 * keeps 40 % of each page free (`drizzle/0016_memories_fillfactor.sql`) so that the new version stays
 * on its page as a heap-only tuple and no index is written (50 rows: 11 → 2.7 ms on the embedded database).
 */
export async function touchRecalled(db: Executor, ids: string[], at: Date, resolutionMs: number): Promise<void> {
  if (ids.length === 0) return;
  const staleBefore = new Date(at.getTime() - resolutionMs);
  await db
    .update(memories)
    .set({ lastRecalledAt: at })
    .where(and(inArray(memories.id, ids), or(isNull(memories.lastRecalledAt), lt(memories.lastRecalledAt, staleBefore))));
}

/** Rows whose vector was made by another embedder (or none): the re-embedding backlog. */
export async function staleEmbeddingBatch(db: Executor, space: EmbeddingSpace, limit: number): Promise<Array<{ id: string; content: string }>> {
  return db
    .select({ id: memories.id, content: memories.content })
    .from(memories)
    .where(
      or(
        isNull(memories.embedding),
        sql`${memories.embeddingModel} IS DISTINCT FROM ${space.model}`,
        sql`${memories.embeddingDimensions} IS DISTINCT FROM ${space.dimensions}`,
      ),
    )
    .orderBy(memories.id)
    .limit(limit);
}

export async function countStaleEmbeddings(db: Executor, space: EmbeddingSpace): Promise<number> {
  const result = await db.execute(
    sql`SELECT count(*)::int AS count FROM memories WHERE embedding IS NULL OR embedding_model IS DISTINCT FROM ${space.model} OR embedding_dimensions IS DISTINCT FROM ${space.dimensions}`,
  );
  return Number(rowsOf<{ count: number }>(result)[0]?.count ?? 0);
}

/** Conversations with a character where the user spoke (their DM, or channels), most recent first. */
export async function conversationsOfUser(db: Executor, characterId: string, userId: string, limit: number): Promise<string[]> {
  const result = await db.execute(
    sql`SELECT c.id FROM conversations c WHERE c.character_id = ${characterId} AND (c.user_id = ${userId} OR EXISTS (SELECT 1 FROM messages x WHERE x.conversation_id = c.id AND x.speaker_user_id = ${userId})) ORDER BY c.updated_at DESC LIMIT ${limit}`,
  );
  return rowsOf<{ id: string }>(result).map((row) => row.id);
}

/** How many user-scope memories the user has, over every character (for the per-user cap). */
export async function countUserMemories(db: Executor, userId: string): Promise<number> {
  const [row] = await db.select({ count: sql<number>`count(*)::int` }).from(memories).where(and(eq(memories.userId, userId), eq(memories.scope, 'user')));
  return Number(row?.count ?? 0);
}
