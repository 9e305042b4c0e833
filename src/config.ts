import path from 'node:path';
import { z } from 'zod';

/**
 * The only place that reads process.env. Everything else receives the frozen Config.
 * A bad value stops start-up with one message naming every bad variable.
 */

export const PROVIDERS = [
  'openrouter',
  'openai',
  'xai',
  'gemini',
  'elevenlabs',
  'minimax',
  'fal',
  'stability',
  'kie',
] as const;
export type ProviderName = (typeof PROVIDERS)[number];

export const DEFAULT_PROVIDER_BASE_URLS: Record<ProviderName, string> = {
  openrouter: 'https://openrouter.ai/api/v1',
  openai: 'https://api.openai.com/v1',
  xai: 'https://api.x.ai/v1',
  gemini: 'https://generativelanguage.googleapis.com',
  elevenlabs: 'https://api.elevenlabs.io',
  minimax: 'https://api.minimax.io',
  fal: 'https://fal.run',
  stability: 'https://api.stability.ai',
  kie: 'https://api.kie.ai',
};

const optionalString = z
  .string()
  .trim()
  .transform((value) => (value === '' ? undefined : value))
  .optional();

const booleanFlag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', ''])
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

const commaList = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean),
  );

const url = z.url();

const environmentSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8000),
  HOST: z.string().min(1).default('0.0.0.0'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATA_DIR: z.string().min(1).default('./data'),
  /** Chat turns one process runs at once; beyond, 503 with Retry-After at once instead of an ever longer queue (0 = no limit). */
  MAX_TURNS_IN_FLIGHT: z.coerce.number().int().min(0).default(512),
  /** The embedded database (PGlite) in its own worker thread, so its work runs beside the HTTP server's; off = on the main thread. */
  EMBEDDED_DATABASE_THREAD: booleanFlag.default(true),
  /** Repeated statements run as named prepared statements (parsed and planned once per connection); off for poolers that cannot keep them. */
  DATABASE_PREPARED_STATEMENTS: booleanFlag.default(true),
  DATABASE_URL: optionalString.pipe(z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional()),
  REDIS_URL: optionalString.pipe(z.string().regex(/^rediss?:\/\//, 'must be a redis:// URL').optional()),
  /** Namespace for every Redis key and BullMQ queue, so several installations can share one Redis. */
  REDIS_KEY_PREFIX: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/, 'letters, digits, _ and - only').default('anima'),
  ENCRYPTION_KEY: optionalString.pipe(
    z
      .string()
      .refine((value) => Buffer.from(value, 'base64').length === 32, 'must be 32 bytes, base64-encoded')
      .optional(),
  ),
  /** Older vault keys kept for decryption during rotation: "keyId:base64,keyId:base64". */
  ENCRYPTION_KEYS_PREVIOUS: optionalString,
  ADMIN_API_KEY: optionalString,
  INTERNAL_API_KEY: optionalString,
  CORS_ORIGINS: commaList.default([]),
  BODY_LIMIT_BYTES: z.coerce.number().int().positive().default(1_048_576),
  /** Character-card imports carry PNG avatars, so that route takes a larger body. */
  IMPORT_BODY_LIMIT_BYTES: z.coerce.number().int().positive().default(10_485_760),
  SHUTDOWN_GRACE_MS: z.coerce.number().int().positive().default(10_000),
  REQUEST_TIMEOUT_MS: z.coerce.number().int().positive().default(120_000),
  UPSTREAM_TIMEOUT_MS: z.coerce.number().int().positive().default(60_000),
  UPSTREAM_MAX_RETRIES: z.coerce.number().int().min(0).max(10).default(2),
  /** Silence on an open SSE answer after which a keep-alive comment is sent (proxies drop idle streams). */
  STREAM_KEEP_ALIVE_MS: z.coerce.number().int().min(100).max(120_000).default(5_000),
  /** Timeout of the check a provider key gets when a user adds it (the user is waiting). */
  KEY_CHECK_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
  SETUP_URL: optionalString.pipe(url.optional()),
  PUBLIC_BASE_URL: optionalString.pipe(url.optional()),
  OIDC_ISSUER: optionalString,
  OIDC_AUDIENCE: optionalString,
  OIDC_JWKS_URL: optionalString.pipe(url.optional()),
  /** Minimum time between refetches of the issuer's key set on an unknown kid (guards the issuer against floods). */
  OIDC_JWKS_COOLDOWN_MS: z.coerce.number().int().min(0).default(30_000),
  /** Run BullMQ consumers inside the server process even when Redis is set. */
  RUN_WORKERS_IN_PROCESS: booleanFlag.optional(),
  /** Jobs run inside the server (no Redis, or RUN_WORKERS_IN_PROCESS): background jobs (memory formation, summaries) running at once. */
  BACKGROUND_JOB_CONCURRENCY: z.coerce.number().int().min(1).max(16).default(1),
  /** Inside the server: event-loop utilisation (0–1) from which waiting background jobs are held back. */
  BACKGROUND_JOB_BUSY_UTILIZATION: z.coerce.number().min(0).max(1).default(0.9),
  /** Inside the server: the longest a ready background job is held back while busy (0 = never held back). */
  // At most 10 minutes: longer only starves memory formation and summaries of a busy server.
  BACKGROUND_JOB_MAX_DEFER_MS: z.coerce.number().int().min(0).max(600_000).default(2000),
  /** SSRF guard: allow fetching attachments from loopback/private addresses (tests, trusted LANs). */
  ALLOW_PRIVATE_FETCH: booleanFlag.default(false),
  /** Moderation policy (blocked categories as keyword/regex lists); relative paths are from the project root. */
  MODERATION_POLICY_PATH: z.string().min(1).default('config/moderation.json'),
  DEFAULT_CHAT_MODEL: z.string().min(1).default('openai/gpt-4o-mini'),
  VISION_MODEL: z.string().min(1).default('gemini-2.5-flash'),
  /** words: the shipped GloVe word vectors (semantic, no download); hashing (alias builtin): feature hashing. */
  EMBEDDING_PROVIDER: z.enum(['words', 'hashing', 'builtin', 'openrouter', 'openai', 'gemini', 'local', 'custom']).default('words'),
  EMBEDDING_MODEL: optionalString,
  /** Vector size; defaults to 100 for the word vectors (their fixed size) and 384 for the others. */
  EMBEDDING_DIMENSIONS: z.coerce.number().int().min(8).max(4096).optional(),
  EMBEDDING_BASE_URL: optionalString.pipe(url.optional()),
  EMBEDDING_API_KEY: optionalString,
  EMBEDDING_LOCAL_MODEL_DIR: optionalString,
  /** Long-term memory retrieval: per-scope weights, how many memories and how many prompt tokens. */
  MEMORY_WEIGHT_CORE: z.coerce.number().min(0).max(10).default(0.3),
  MEMORY_WEIGHT_USER: z.coerce.number().min(0).max(10).default(0.5),
  MEMORY_WEIGHT_GROUP: z.coerce.number().min(0).max(10).default(0.2),
  MEMORY_TOP_K: z.coerce.number().int().min(1).max(100).default(8),
  /** Cosine similarity below which a vector match is not relevant (full-text matches always are). */
  MEMORY_MIN_RELEVANCE: z.coerce.number().min(-1).max(1).default(0.2),
  MEMORY_TOKEN_BUDGET: z.coerce.number().int().min(0).max(100_000).default(600),
  /** Score fusion: weight of the vector list; the full-text list gets 1 − this (both min–max normalised). */
  MEMORY_VECTOR_WEIGHT: z.coerce.number().min(0).max(1).default(0.3),
  /** Full-text query expansion by the word vectors' nearest neighbours: their weight (0 = off) and how many per word. */
  MEMORY_EXPANSION_WEIGHT: z.coerce.number().min(0).max(1).default(0.5),
  MEMORY_EXPANSION_NEIGHBOURS: z.coerce.number().int().min(0).max(20).default(5),
  /** Scopes with at most this many vectors are searched exactly; larger ones through the HNSW index. */
  MEMORY_EXACT_SCAN_MAX_ROWS: z.coerce.number().int().min(0).default(5000),
  /** Wait at least this long (at most twice it) before forming memories from an exchange, so a burst of messages is read in one job. */
  MEMORY_FORMATION_DELAY_MS: z.coerce.number().int().min(0).default(2000),
  /** A conversation is summarised into long-term memory every this many messages (0 = never). */
  MEMORY_SUMMARY_EVERY_MESSAGES: z.coerce.number().int().min(0).default(40),
  /** Per-user caps (defaults; a plan's features or a user's quotas `max_characters` … override them). */
  MAX_CHARACTERS_PER_USER: z.coerce.number().int().min(0).default(100),
  MAX_API_KEYS_PER_USER: z.coerce.number().int().min(0).default(20),
  MAX_MEMORIES_PER_USER: z.coerce.number().int().min(0).default(5000),
  /** Size caps on chat input: one message, and the whole prompt a client sends (system + history + message). */
  MAX_MESSAGE_CHARS: z.coerce.number().int().min(1).default(32_000),
  MAX_PROMPT_CHARS: z.coerce.number().int().min(1).default(200_000),
  /** Images: the provider used when a request names none and the user has no key that says otherwise. */
  IMAGE_DEFAULT_PROVIDER: z.enum(['fal', 'openai', 'stability', 'kie']).default('fal'),
  /** How long POST /v1/images/generations waits for the images before answering 202 (pending). */
  IMAGE_WAIT_MS: z.coerce.number().int().min(0).max(600_000).default(55_000),
  /** A generation still unfinished after this long is failed (and the vendor task cancelled). */
  IMAGE_JOB_TIMEOUT_MS: z.coerce.number().int().min(1000).default(300_000),
  /** First wait between polls of a vendor's task; it grows by half each time, up to 10 s. */
  IMAGE_POLL_INTERVAL_MS: z.coerce.number().int().min(10).max(60_000).default(1000),
  /** The largest image downloaded from a vendor or accepted for description. */
  IMAGE_MAX_BYTES: z.coerce.number().int().min(1024).default(20 * 1024 * 1024),
  /** The OpenAI-compatible vision model used by POST /v1/vision/describe when Gemini has no key. */
  VISION_OPENAI_MODEL: z.string().min(1).default('gpt-4o-mini'),
  /** Per-plan request, stream and quota limits (429). Off only for trusted single-user installs and test harnesses. */
  RATE_LIMITS_ENABLED: booleanFlag.default(true),
  /** A credit reservation not settled within this time (a crashed process) is released by the sweep job. */
  RESERVATION_TTL_MS: z.coerce.number().int().min(10_000).default(900_000),
  /** How often stale reservations are swept. */
  RESERVATION_SWEEP_INTERVAL_MS: z.coerce.number().int().min(1_000).default(60_000),
  MINIMAX_GROUP_ID: optionalString,
  /** The market (Stripe Checkout); unset: the market routes answer 503 and the rest works. */
  STRIPE_SECRET_KEY: optionalString,
  STRIPE_WEBHOOK_SECRET: optionalString,
  /** Where the Stripe SDK sends its calls (a self-hosted mock, tests), e.g. http://127.0.0.1:12111. */
  STRIPE_API_BASE: optionalString.pipe(url.optional()),
  /** Where Checkout sends the buyer back; default: PUBLIC_BASE_URL (or the request's origin) + /?checkout=success|cancel. */
  MARKET_SUCCESS_URL: optionalString.pipe(url.optional()),
  MARKET_CANCEL_URL: optionalString.pipe(url.optional()),
  /** Where images and audio are kept: `file` (under DATA_DIR/media) or `s3://bucket/prefix`. */
  MEDIA_STORE: optionalString.pipe(z.string().regex(/^(file|s3:\/\/[^/]+(\/.*)?)$/, 'must be file or s3://bucket/prefix').optional()),
  S3_ENDPOINT: optionalString.pipe(url.optional()),
  S3_REGION: optionalString,
  AWS_ACCESS_KEY_ID: optionalString,
  AWS_SECRET_ACCESS_KEY: optionalString,
  /** Secret of signed media URLs; unset = derived from ENCRYPTION_KEY (or a generated key file in DATA_DIR). */
  MEDIA_URL_SECRET: optionalString,
  /** How long a signed media URL (a chat turn's audio_url) stays valid. */
  MEDIA_URL_TTL_SECONDS: z.coerce.number().int().min(60).max(30 * 86_400).default(7 * 86_400),
  /** Stored voice replies are deleted after this many days (0 = kept until the user is deleted). */
  MEDIA_AUDIO_RETENTION_DAYS: z.coerce.number().int().min(0).max(3650).default(30),
  /** Largest voice message (audio_url, input_audio, /v1/audio/transcriptions) accepted. */
  AUDIO_INPUT_MAX_BYTES: z.coerce.number().int().positive().default(25 * 1_048_576),
  /** Longest text POST /v1/tts speaks in one request (longer texts: 413). */
  TTS_MAX_CHARACTERS: z.coerce.number().int().positive().max(100_000).default(5000),
  /** How long an answer to a request with an Idempotency-Key is kept for replay (chat, images, speech). */
  IDEMPOTENCY_TTL_SECONDS: z.coerce.number().int().min(1).max(30 * 86_400).default(86_400),
  FAL_QUEUE_BASE_URL: optionalString.pipe(url.optional()),
  ...providerVariables(),
});

function providerVariables() {
  const shape: Record<string, z.ZodType<string | undefined>> = {};
  for (const provider of PROVIDERS) {
    const prefix = provider.toUpperCase();
    shape[`${prefix}_API_KEY`] = optionalString;
    shape[`${prefix}_BASE_URL`] = optionalString.pipe(url.optional());
  }
  return shape;
}

export interface ProviderSettings {
  baseUrl: string;
  /** The platform's own key; the fallback for users without one of their own. */
  platformKey: string | undefined;
}

export interface Config {
  environment: 'development' | 'production' | 'test';
  port: number;
  host: string;
  logLevel: string;
  dataDir: string;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  redisKeyPrefix: string;
  encryptionKey: string | undefined;
  encryptionKeysPrevious: string | undefined;
  adminApiKey: string | undefined;
  internalApiKey: string | undefined;
  corsOrigins: string[];
  bodyLimitBytes: number;
  importBodyLimitBytes: number;
  shutdownGraceMs: number;
  requestTimeoutMs: number;
  upstreamTimeoutMs: number;
  upstreamMaxRetries: number;
  streamKeepAliveMs: number;
  keyCheckTimeoutMs: number;
  setupUrl: string | undefined;
  publicBaseUrl: string | undefined;
  oidc: { issuer: string; audience: string; jwksUrl: string | undefined; jwksCooldownMs: number } | undefined;
  runWorkersInProcess: boolean;
  embeddedDatabaseThread: boolean;
  databasePreparedStatements: boolean;
  maxTurnsInFlight: number;
  /** The budget for background jobs run inside the server, on either queue (see BACKGROUND_JOB_*). */
  backgroundJobs: { concurrency: number; busyUtilization: number; maxDeferMs: number };
  allowPrivateFetch: boolean;
  moderationPolicyPath: string;
  defaultChatModel: string;
  visionModel: string;
  embedding: {
    provider: 'words' | 'hashing' | 'builtin' | 'openrouter' | 'openai' | 'gemini' | 'local' | 'custom';
    model: string | undefined;
    dimensions: number;
    baseUrl: string | undefined;
    apiKey: string | undefined;
    localModelDir: string | undefined;
  };
  memory: {
    weights: { core: number; user: number; group: number };
    topK: number;
    minRelevance: number;
    tokenBudget: number;
    vectorWeight: number;
    expansionWeight: number;
    expansionNeighbours: number;
    exactScanMaxRows: number;
    formationDelayMs: number;
    summaryEveryMessages: number;
  };
  /** Per-user caps; `limitFor` (identity) reads a user's quota, then the plan's feature, then these. */
  userLimits: { characters: number; apiKeys: number; memories: number };
  maxMessageChars: number;
  maxPromptChars: number;
  images: {
    defaultProvider: 'fal' | 'openai' | 'stability' | 'kie';
    waitMs: number;
    jobTimeoutMs: number;
    pollIntervalMs: number;
    maxBytes: number;
  };
  visionOpenAiModel: string;
  billing: { rateLimitsEnabled: boolean; reservationTtlMs: number; reservationSweepIntervalMs: number };
  minimaxGroupId: string | undefined;
  stripe: { secretKey: string | undefined; webhookSecret: string | undefined; apiBase: string | undefined; successUrl: string | undefined; cancelUrl: string | undefined };
  media: {
    store: { kind: 'file'; directory: string } | { kind: 's3'; bucket: string; prefix: string; endpoint: string | undefined; region: string; accessKeyId: string | undefined; secretAccessKey: string | undefined };
    urlSecret: string | undefined;
    urlTtlSeconds: number;
    audioRetentionDays: number;
  };
  voice: { audioInputMaxBytes: number; ttsMaxCharacters: number };
  idempotencyTtlSeconds: number;
  falQueueBaseUrl: string;
  providers: Record<ProviderName, ProviderSettings>;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function loadConfig(environment: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  const parsed = environmentSchema.safeParse(environment);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`),
    );
  }
  const env = parsed.data as z.infer<typeof environmentSchema> & Record<string, string | undefined>;
  const problems: string[] = [];
  if (env.NODE_ENV === 'production' && !env.ENCRYPTION_KEY) {
    problems.push('ENCRYPTION_KEY: required when NODE_ENV=production (32 bytes, base64)');
  }
  if ((env.OIDC_ISSUER === undefined) !== (env.OIDC_AUDIENCE === undefined)) {
    problems.push('OIDC_ISSUER / OIDC_AUDIENCE: set both or neither');
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const providers = {} as Record<ProviderName, ProviderSettings>;
  for (const provider of PROVIDERS) {
    const prefix = provider.toUpperCase();
    providers[provider] = {
      baseUrl: (env[`${prefix}_BASE_URL`] ?? DEFAULT_PROVIDER_BASE_URLS[provider]).replace(/\/+$/, ''),
      platformKey: env[`${prefix}_API_KEY`],
    };
  }

  const config: Config = {
    environment: env.NODE_ENV,
    port: env.PORT,
    host: env.HOST,
    logLevel: env.LOG_LEVEL,
    dataDir: env.DATA_DIR,
    databaseUrl: env.DATABASE_URL,
    redisUrl: env.REDIS_URL,
    redisKeyPrefix: env.REDIS_KEY_PREFIX,
    encryptionKey: env.ENCRYPTION_KEY,
    encryptionKeysPrevious: env.ENCRYPTION_KEYS_PREVIOUS,
    adminApiKey: env.ADMIN_API_KEY,
    internalApiKey: env.INTERNAL_API_KEY,
    corsOrigins: env.CORS_ORIGINS,
    bodyLimitBytes: env.BODY_LIMIT_BYTES,
    importBodyLimitBytes: env.IMPORT_BODY_LIMIT_BYTES,
    shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
    requestTimeoutMs: env.REQUEST_TIMEOUT_MS,
    upstreamTimeoutMs: env.UPSTREAM_TIMEOUT_MS,
    upstreamMaxRetries: env.UPSTREAM_MAX_RETRIES,
    streamKeepAliveMs: env.STREAM_KEEP_ALIVE_MS,
    keyCheckTimeoutMs: env.KEY_CHECK_TIMEOUT_MS,
    setupUrl: env.SETUP_URL,
    publicBaseUrl: env.PUBLIC_BASE_URL,
    oidc:
      env.OIDC_ISSUER && env.OIDC_AUDIENCE
        ? { issuer: env.OIDC_ISSUER, audience: env.OIDC_AUDIENCE, jwksUrl: env.OIDC_JWKS_URL, jwksCooldownMs: env.OIDC_JWKS_COOLDOWN_MS }
        : undefined,
    runWorkersInProcess: env.RUN_WORKERS_IN_PROCESS ?? !env.REDIS_URL,
    embeddedDatabaseThread: env.EMBEDDED_DATABASE_THREAD,
    databasePreparedStatements: env.DATABASE_PREPARED_STATEMENTS,
    maxTurnsInFlight: env.MAX_TURNS_IN_FLIGHT,
    backgroundJobs: { concurrency: env.BACKGROUND_JOB_CONCURRENCY, busyUtilization: env.BACKGROUND_JOB_BUSY_UTILIZATION, maxDeferMs: env.BACKGROUND_JOB_MAX_DEFER_MS },
    allowPrivateFetch: env.ALLOW_PRIVATE_FETCH,
    moderationPolicyPath: env.MODERATION_POLICY_PATH,
    defaultChatModel: env.DEFAULT_CHAT_MODEL,
    visionModel: env.VISION_MODEL,
    embedding: {
      provider: env.EMBEDDING_PROVIDER,
      model: env.EMBEDDING_MODEL,
      dimensions: env.EMBEDDING_DIMENSIONS ?? (env.EMBEDDING_PROVIDER === 'words' ? 100 : 384),
      baseUrl: env.EMBEDDING_BASE_URL,
      apiKey: env.EMBEDDING_API_KEY,
      localModelDir: env.EMBEDDING_LOCAL_MODEL_DIR,
    },
    memory: {
      weights: { core: env.MEMORY_WEIGHT_CORE, user: env.MEMORY_WEIGHT_USER, group: env.MEMORY_WEIGHT_GROUP },
      topK: env.MEMORY_TOP_K,
      minRelevance: env.MEMORY_MIN_RELEVANCE,
      tokenBudget: env.MEMORY_TOKEN_BUDGET,
      vectorWeight: env.MEMORY_VECTOR_WEIGHT,
      expansionWeight: env.MEMORY_EXPANSION_WEIGHT,
      expansionNeighbours: env.MEMORY_EXPANSION_NEIGHBOURS,
      exactScanMaxRows: env.MEMORY_EXACT_SCAN_MAX_ROWS,
      formationDelayMs: env.MEMORY_FORMATION_DELAY_MS,
      summaryEveryMessages: env.MEMORY_SUMMARY_EVERY_MESSAGES,
    },
    userLimits: { characters: env.MAX_CHARACTERS_PER_USER, apiKeys: env.MAX_API_KEYS_PER_USER, memories: env.MAX_MEMORIES_PER_USER },
    maxMessageChars: env.MAX_MESSAGE_CHARS,
    maxPromptChars: env.MAX_PROMPT_CHARS,
    images: {
      defaultProvider: env.IMAGE_DEFAULT_PROVIDER,
      waitMs: env.IMAGE_WAIT_MS,
      jobTimeoutMs: env.IMAGE_JOB_TIMEOUT_MS,
      pollIntervalMs: env.IMAGE_POLL_INTERVAL_MS,
      maxBytes: env.IMAGE_MAX_BYTES,
    },
    visionOpenAiModel: env.VISION_OPENAI_MODEL,
    billing: {
      rateLimitsEnabled: env.RATE_LIMITS_ENABLED,
      reservationTtlMs: env.RESERVATION_TTL_MS,
      reservationSweepIntervalMs: env.RESERVATION_SWEEP_INTERVAL_MS,
    },
    minimaxGroupId: env.MINIMAX_GROUP_ID,
    stripe: {
      secretKey: env.STRIPE_SECRET_KEY,
      webhookSecret: env.STRIPE_WEBHOOK_SECRET,
      apiBase: env.STRIPE_API_BASE,
      successUrl: env.MARKET_SUCCESS_URL,
      cancelUrl: env.MARKET_CANCEL_URL,
    },
    media: {
      store: mediaStoreSettings(env.MEDIA_STORE, env),
      urlSecret: env.MEDIA_URL_SECRET,
      urlTtlSeconds: env.MEDIA_URL_TTL_SECONDS,
      audioRetentionDays: env.MEDIA_AUDIO_RETENTION_DAYS,
    },
    voice: { audioInputMaxBytes: env.AUDIO_INPUT_MAX_BYTES, ttsMaxCharacters: env.TTS_MAX_CHARACTERS },
    idempotencyTtlSeconds: env.IDEMPOTENCY_TTL_SECONDS,
    falQueueBaseUrl: (env.FAL_QUEUE_BASE_URL ?? 'https://queue.fal.run').replace(/\/+$/, ''),
    providers,
  };
  return deepFreeze(config);
}

function mediaStoreSettings(
  value: string | undefined,
  env: { DATA_DIR: string; S3_ENDPOINT?: string | undefined; S3_REGION?: string | undefined; AWS_ACCESS_KEY_ID?: string | undefined; AWS_SECRET_ACCESS_KEY?: string | undefined },
): Config['media']['store'] {
  if (value === undefined || value === 'file') return { kind: 'file', directory: path.join(env.DATA_DIR, 'media') };
  const location = new URL(value);
  return {
    kind: 's3',
    bucket: location.hostname,
    prefix: location.pathname.replace(/^\/+|\/+$/g, ''),
    endpoint: env.S3_ENDPOINT,
    region: env.S3_REGION ?? 'us-east-1',
    accessKeyId: env.AWS_ACCESS_KEY_ID,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
  };
}

function deepFreeze<T>(value: T): Readonly<T> {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * The Discord bot (`npm run bot`) is its own process that talks to Anima only over HTTP, so it reads
 * only its own variables: no database, no provider keys.
 */
const botEnvironmentSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DISCORD_TOKEN: optionalString,
  DISCORD_APPLICATION_ID: optionalString.pipe(z.string().regex(/^\d{5,25}$/, 'must be the numeric application id').optional()),
  /** Discord's REST base (self-hosted proxies, tests); the gateway URL is read from GET /gateway/bot. */
  DISCORD_API_URL: optionalString.pipe(url.optional()),
  ANIMA_API_URL: optionalString.pipe(url.optional()),
  INTERNAL_API_KEY: optionalString,
  SETUP_URL: optionalString.pipe(url.optional()),
  /** How long the bot trusts a channel's resolved bindings before asking Anima again. */
  BOT_BINDINGS_CACHE_MS: z.coerce.number().int().min(0).max(600_000).default(30_000),
  /** Longest wait for one Anima call (a chat turn, an image). */
  BOT_REQUEST_TIMEOUT_MS: z.coerce.number().int().positive().default(180_000),
  SHUTDOWN_GRACE_MS: z.coerce.number().int().positive().default(10_000),
});

export interface BotConfig {
  environment: 'development' | 'production' | 'test';
  logLevel: string;
  discordToken: string;
  /** Numeric application id; read from the gateway's READY when unset. */
  discordApplicationId: string | undefined;
  /** undefined: discord.js's own default (https://discord.com/api). */
  discordApiUrl: string | undefined;
  animaApiUrl: string;
  internalApiKey: string;
  setupUrl: string;
  bindingsCacheMs: number;
  requestTimeoutMs: number;
  shutdownGraceMs: number;
  /** Slash commands: per guild (instant) in development and tests, global in production. */
  commandScope: 'guild' | 'global';
}

export function loadBotConfig(environment: NodeJS.ProcessEnv = process.env): Readonly<BotConfig> {
  const parsed = botEnvironmentSchema.safeParse(environment);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`));
  }
  const env = parsed.data;
  const problems: string[] = [];
  if (!env.DISCORD_TOKEN) {
    problems.push(
      'DISCORD_TOKEN: not set. Create an application at https://discord.com/developers/applications, add a bot, copy its token into DISCORD_TOKEN (README: "The Discord bot").',
    );
  }
  if (!env.INTERNAL_API_KEY) problems.push('INTERNAL_API_KEY: not set. The bot acts for Discord users with the service key the Anima server was started with.');
  if (problems.length > 0) throw new ConfigError(problems);
  const animaApiUrl = (env.ANIMA_API_URL ?? 'http://127.0.0.1:8000').replace(/\/+$/, '');
  return deepFreeze({
    environment: env.NODE_ENV,
    logLevel: env.LOG_LEVEL,
    discordToken: env.DISCORD_TOKEN!,
    discordApplicationId: env.DISCORD_APPLICATION_ID,
    discordApiUrl: env.DISCORD_API_URL?.replace(/\/+$/, ''),
    animaApiUrl,
    internalApiKey: env.INTERNAL_API_KEY!,
    setupUrl: env.SETUP_URL ?? `${animaApiUrl}/setup`,
    bindingsCacheMs: env.BOT_BINDINGS_CACHE_MS,
    requestTimeoutMs: env.BOT_REQUEST_TIMEOUT_MS,
    shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
    commandScope: env.NODE_ENV === 'production' ? 'global' : 'guild',
  });
}
