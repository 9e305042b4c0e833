import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import { LocalCache, type Events } from '../../infra/cache/index.js';
import type { Database, Executor } from '../../infra/db/database.js';
import { AppError, ForbiddenError, UnauthorizedError, ValidationError } from '../../infra/http/errors.js';
import { apiKeyLookupPrefix, generateApiKey, hashApiKey, hashesEqual, secretsEqual } from './api-keys.js';
import type { PlanReader } from '../billing/plan-catalog.js';
import * as store from './store.js';
import type { ApiKeyRole, PlanRow, UserRow } from './store.js';

export interface Principal {
  role: ApiKeyRole;
  /** How the caller proved who it is. */
  credential: 'api_key' | 'admin_env' | 'internal_env' | 'oidc';
  apiKeyId: string | null;
  /** The user the credential itself belongs to (user keys, OIDC tokens). */
  ownUserId: string | null;
}

export interface EndUserContext {
  externalUserId?: string | undefined;
  username?: string | undefined;
}

/** Verifies bearer tokens that are not platform keys (OIDC ID tokens); set by the OIDC part. */
export type TokenVerifier = (token: string) => Promise<{ externalId: string; username?: string } | undefined>;

const LAST_USED_FLUSH_MS = 30_000;
/** External ids of the users tied to keys themselves; X-User-Id may not name them. */
export const RESERVED_EXTERNAL_ID_PREFIX = 'anima:';

export interface IdentityServiceDependencies {
  config: Readonly<Config>;
  db: Database;
  logger: Logger;
  /** Cross-replica invalidation of the per-process user and key caches (absent: this process only). */
  events?: Events | undefined;
  /** Plans, which billing owns: a user's plan is read through it (cached there), never from the table here. */
  plans: PlanReader;
}

/** Per-process copies of users and API keys live this long without an invalidation. */
export const IDENTITY_CACHE_TTL_MS = 30_000;
export const USERS_CHANGED_CHANNEL = 'identity:users-changed';
export const API_KEYS_CHANGED_CHANNEL = 'identity:api-keys-changed';

export class IdentityService {
  private tokenVerifier: TokenVerifier | undefined;
  /** last_used_at / last_active_at are batched in memory and flushed periodically, not written per request. */
  private readonly pendingKeyUse = new Map<string, Date>();
  private readonly pendingUserActivity = new Map<string, Date>();
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly credentialUserIds = new Map<string, string>();
  /** Users by `id:<id>` and `ext:<external id>`, tagged with the user id. */
  private readonly users: LocalCache<UserRow | undefined>;
  /** API key rows by lookup prefix, tagged with the key id (revocation drops them everywhere). */
  private readonly apiKeys: LocalCache<store.ApiKeyRow | undefined>;

  constructor(private readonly dependencies: IdentityServiceDependencies) {
    const { events } = dependencies;
    this.users = new LocalCache({ events, channel: USERS_CHANGED_CHANNEL, ttlMs: IDENTITY_CACHE_TTL_MS });
    this.apiKeys = new LocalCache({ events, channel: API_KEYS_CHANGED_CHANNEL, ttlMs: IDENTITY_CACHE_TTL_MS });
  }

  /** Subscribes the caches to changes made by other replicas. */
  async startCaches(): Promise<void> {
    await Promise.all([this.users.start(), this.apiKeys.start()]);
  }

  async closeCaches(): Promise<void> {
    await Promise.all([this.users.close(), this.apiKeys.close()]);
  }

  /** A plan by id (billing's cached catalog). */
  findPlan(planId: string): Promise<PlanRow | undefined> {
    return this.dependencies.plans.find(planId);
  }

  /** Drops a user's cached row in every replica: call after any committed change to the user (or its deletion). */
  async forgetUser(userId: string, options: { apiKeys?: boolean } = {}): Promise<void> {
    await this.users.invalidate(userId);
    if (options.apiKeys) await this.apiKeys.invalidate('*');
  }

  /** Drops a revoked or changed API key's cached row in every replica. */
  async forgetApiKey(keyId: string): Promise<void> {
    await this.apiKeys.invalidate(keyId);
  }

  private findUserById(userId: string): Promise<UserRow | undefined> {
    return this.users.get(`id:${userId}`, userId, () => store.findUserById(this.dependencies.db, userId));
  }

  /** The user of an external id, created on first sight; the found row is cached per process. */
  private async findOrCreateUser(externalId: string, username: string | undefined): Promise<{ user: UserRow; created: boolean }> {
    const key = `ext:${externalId}`;
    const cached = await this.users.get(key, (user) => user!.id, () => store.findUserByExternalId(this.dependencies.db, externalId));
    if (cached) return { user: cached, created: false };
    return store.findOrCreateUserByExternalId(this.dependencies.db, externalId, username);
  }

  private async updateUserRow(executor: Executor, userId: string, changes: Parameters<typeof store.updateUser>[2]): Promise<UserRow | undefined> {
    const updated = await store.updateUser(executor, userId, changes);
    await this.forgetUser(userId);
    return updated;
  }

  get database(): Database {
    return this.dependencies.db;
  }

  setTokenVerifier(verifier: TokenVerifier | undefined): void {
    this.tokenVerifier = verifier;
  }

  startBackgroundFlush(): void {
    this.flushTimer = setInterval(() => void this.flushActivity(), LAST_USED_FLUSH_MS);
    this.flushTimer.unref();
  }

  async close(): Promise<void> {
    if (this.flushTimer) clearInterval(this.flushTimer);
    await this.flushActivity();
  }

  async flushActivity(): Promise<void> {
    if (this.pendingKeyUse.size === 0 && this.pendingUserActivity.size === 0) return;
    const keys = new Map(this.pendingKeyUse);
    const userActivity = new Map(this.pendingUserActivity);
    this.pendingKeyUse.clear();
    this.pendingUserActivity.clear();
    try {
      await store.touchApiKeys(this.dependencies.db, keys);
      await store.touchUsers(this.dependencies.db, userActivity);
    } catch (error) {
      this.dependencies.logger.warn({ err: error }, 'could not record key and user activity');
    }
  }

  noteUserActivity(userId: string): void {
    this.pendingUserActivity.set(userId, new Date());
  }

  /**
   * On first start without ADMIN_API_KEY, generates an admin key and prints it once.
   * The settings row is written first so that two replicas starting together make only one.
   */
  async bootstrapAdminKey(print: (message: string) => void): Promise<string | undefined> {
    if (this.dependencies.config.adminApiKey) return undefined;
    const claimed = await store.writeSettingIfAbsent(this.dependencies.db, 'bootstrap_admin_key', { createdAt: new Date().toISOString() });
    if (!claimed) return undefined;
    const generated = generateApiKey();
    await store.insertApiKey(this.dependencies.db, {
      prefix: generated.prefix,
      hash: generated.hash,
      role: 'admin',
      name: 'bootstrap admin',
      userId: null,
      expiresAt: null,
    });
    print(
      `\n  ADMIN_API_KEY was not set, so an administrator key was generated. It is shown only this once:\n\n    ${generated.key}\n\n  Keep it safe (revoke it with DELETE /v1/keys/{id}).\n`,
    );
    return generated.key;
  }

  async createApiKey(options: {
    role: ApiKeyRole;
    name: string;
    userId: string | null;
    expiresAt: Date | null;
  }): Promise<{ key: string; row: store.ApiKeyRow }> {
    const generated = generateApiKey();
    const row = await store.insertApiKey(this.dependencies.db, { prefix: generated.prefix, hash: generated.hash, ...options });
    return { key: generated.key, row };
  }

  /** Resolves `Authorization: Bearer …` into a principal, or throws 401. */
  async authenticate(authorization: string | undefined): Promise<Principal> {
    const token = parseBearer(authorization);
    if (!token) throw new UnauthorizedError('Send `Authorization: Bearer <key>`.');
    const { config } = this.dependencies;
    if (config.adminApiKey && secretsEqual(token, config.adminApiKey)) {
      return { role: 'admin', credential: 'admin_env', apiKeyId: null, ownUserId: null };
    }
    if (config.internalApiKey && secretsEqual(token, config.internalApiKey)) {
      return { role: 'service', credential: 'internal_env', apiKeyId: null, ownUserId: null };
    }
    const prefix = apiKeyLookupPrefix(token);
    if (prefix) {
      const row = await this.apiKeys.get(prefix, (found) => found!.id, () => store.findApiKeyByPrefix(this.dependencies.db, prefix));
      if (!row || !hashesEqual(row.hash, hashApiKey(token))) throw new UnauthorizedError('The API key is not valid.');
      if (row.revokedAt) throw new UnauthorizedError('The API key was revoked.');
      if (row.expiresAt && row.expiresAt.getTime() <= Date.now()) throw new UnauthorizedError('The API key has expired.');
      this.pendingKeyUse.set(row.id, new Date());
      return { role: row.role, credential: 'api_key', apiKeyId: row.id, ownUserId: row.userId };
    }
    if (this.tokenVerifier && token.split('.').length === 3) {
      // The verifier throws a specific 401 (expired, wrong issuer…) or 503 when the issuer is unreachable.
      const verified = await this.tokenVerifier(token);
      if (verified) {
        const found = await this.findOrCreateUser(verified.externalId, verified.username);
        const user = await this.keepUsernameCurrent(found.user, verified.username);
        return { role: 'user', credential: 'oidc', apiKeyId: null, ownUserId: user.id };
      }
    }
    throw new UnauthorizedError('The API key or token is not valid.');
  }

  /** POST /v1/users: the user with this external id, created if new (username updated when given). */
  async registerUser(externalId: string, username: string | undefined): Promise<{ user: UserRow; created: boolean }> {
    const { db } = this.dependencies;
    const found = await store.findOrCreateUserByExternalId(db, externalId, username);
    if (!found.created && username !== undefined && found.user.username !== username) {
      const updated = await this.updateUserRow(db, found.user.id, { username });
      return { user: updated ?? found.user, created: false };
    }
    return found;
  }

  /** A user with their plan and external identities, as GET /v1/me and the admin view show them. */
  async describeUser(user: UserRow): Promise<{ user: UserRow; plan: PlanRow | undefined; identities: string[] }> {
    const { db } = this.dependencies;
    const [plan, identities] = await Promise.all([this.findPlan(user.planId), store.listIdentities(db, user.id)]);
    return { user, plan, identities };
  }

  /**
   * GET /v1/admin/users: users newest first, optionally those whose external id or username contains
   * `search` (or whose id it is), described as GET /v1/me and the admin view describe one user.
   */
  async listUsers(options: { search?: string | undefined; cursor?: string | undefined; limit: number }): Promise<{
    data: Array<{ user: UserRow; plan: PlanRow | undefined; identities: string[] }>;
    nextCursor: string | null;
  }> {
    const { db } = this.dependencies;
    const rows = await store.listUsers(db, { search: options.search, before: decodeUserCursor(options.cursor), limit: options.limit + 1 });
    const page = rows.slice(0, options.limit);
    const identities = await store.listIdentitiesOf(db, page.map((row) => row.user.id));
    const plans = new Map<string, PlanRow | undefined>();
    for (const planId of new Set(page.map((row) => row.user.planId))) plans.set(planId, await this.findPlan(planId));
    const last = page.at(-1);
    return {
      data: page.map(({ user }) => ({ user, plan: plans.get(user.planId), identities: identities.get(user.id) ?? [] })),
      nextCursor: rows.length > options.limit && last ? Buffer.from(JSON.stringify([last.createdAtText, last.user.id]), 'utf8').toString('base64url') : null,
    };
  }

  async findUser(userId: string): Promise<UserRow | undefined> {
    return store.findUserById(this.dependencies.db, userId);
  }

  /** Puts a user on a plan (the market, on a subscription's events), inside the caller's transaction. */
  async setPlan(userId: string, planId: string, executor: Executor = this.dependencies.db): Promise<void> {
    if (!(await this.dependencies.plans.findIn(executor, planId))) throw new ValidationError('plan', `There is no plan "${planId}".`);
    await this.updateUserRow(executor, userId, { planId });
    // The caller's transaction commits after this returns: a replica that re-read the row before
    // the commit may hold the old plan, so the change is announced once more when it is visible.
    if (executor !== this.dependencies.db) setTimeout(() => void this.forgetUser(userId).catch(() => undefined), 1_000).unref();
  }

  async planExists(planId: string): Promise<boolean> {
    return (await this.dependencies.plans.findIn(this.dependencies.db, planId)) !== undefined;
  }

  /** An admin route's `{id}`: the internal id or an external id (e.g. a Discord user id). */
  async findUserByReference(reference: string): Promise<UserRow | undefined> {
    const { db } = this.dependencies;
    const byId = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(reference) ? await store.findUserById(db, reference) : undefined;
    return byId ?? (await store.findUserByExternalId(db, reference));
  }

  /** Admin changes: the plan must exist (422 otherwise), quotas replace the previous ones. */
  async updateUser(
    userId: string,
    changes: { plan?: string | undefined; active?: boolean | undefined; quotas?: Record<string, number> | undefined; username?: string | undefined },
  ): Promise<UserRow | undefined> {
    const { db } = this.dependencies;
    const update: { planId?: string; active?: boolean; quotas?: Record<string, number>; username?: string } = {};
    if (changes.plan !== undefined) {
      if (!(await this.dependencies.plans.findIn(db, changes.plan))) throw new ValidationError('plan', `There is no plan "${changes.plan}".`);
      update.planId = changes.plan;
    }
    if (changes.active !== undefined) update.active = changes.active;
    if (changes.quotas !== undefined) update.quotas = changes.quotas;
    if (changes.username !== undefined) update.username = changes.username;
    return this.updateUserRow(db, userId, update);
  }

  /**
   * The end user a request acts for. A user credential acts only as itself; a service or admin
   * credential acts for the user named by X-User-Id (or the body's user_id), created on first sight.
   * Without X-User-Id a service key acts as its own user; an admin key as nobody (undefined: it sees all).
   */
  async resolveActingUser(principal: Principal, context: EndUserContext): Promise<UserRow | undefined> {
    const { db } = this.dependencies;
    if (principal.role === 'user') {
      if (!principal.ownUserId) throw new UnauthorizedError('This key belongs to no user.');
      const user = await this.findUserById(principal.ownUserId);
      if (!user) throw new UnauthorizedError('The user of this key no longer exists.');
      if (context.externalUserId) {
        const identities = await store.listIdentities(db, user.id);
        if (!identities.includes(context.externalUserId) && context.externalUserId !== user.id) {
          throw new ForbiddenError('A user key cannot act for another user (X-User-Id).');
        }
      }
      this.assertActive(user);
      this.noteUserActivity(user.id);
      return user;
    }
    if (!context.externalUserId) return principal.role === 'service' ? this.credentialUser(principal) : undefined;
    if (context.externalUserId.startsWith(RESERVED_EXTERNAL_ID_PREFIX)) {
      throw new ValidationError('X-User-Id', `External ids starting with "${RESERVED_EXTERNAL_ID_PREFIX}" are reserved for the users of keys.`);
    }
    if (context.externalUserId.length > 200) throw new ValidationError('X-User-Id', 'X-User-Id is longer than 200 characters.');
    if (context.username !== undefined && context.username.length > 100) throw new ValidationError('X-Username', 'X-Username is longer than 100 characters.');
    const found = await this.findOrCreateUser(context.externalUserId, context.username);
    const user = await this.keepUsernameCurrent(found.user, context.username);
    this.assertActive(user);
    this.noteUserActivity(user.id);
    return user;
  }

  /**
   * The user tied to a service or admin credential itself (Shapes.inc's rule: without X-User-Id the
   * caller is the key's owner), created on first use under a reserved external id.
   */
  async credentialUser(principal: Principal): Promise<UserRow> {
    if (principal.ownUserId) {
      const own = await this.findUserById(principal.ownUserId);
      if (own) return own;
    }
    const externalId = credentialExternalId(principal);
    const { user } = await this.findOrCreateUser(externalId, undefined);
    this.credentialUserIds.set(externalId, user.id);
    this.assertActive(user);
    this.noteUserActivity(user.id);
    return user;
  }

  /**
   * A per-user cap: the user's quota `max_<name>`, else the plan's feature `max_<name>`, else the
   * configured default. One function so that plans (billing) can own the numbers later.
   */
  async limitFor(user: UserRow, name: keyof Config['userLimits']): Promise<number> {
    const quotaName = `max_${name === 'apiKeys' ? 'api_keys' : name}`;
    const fromQuota = user.quotas[quotaName];
    if (typeof fromQuota === 'number') return fromQuota;
    const plan = await this.findPlan(user.planId);
    const fromPlan = plan?.features[quotaName];
    if (typeof fromPlan === 'number' && Number.isFinite(fromPlan)) return fromPlan;
    return this.dependencies.config.userLimits[name];
  }

  /** 403 limit_reached when the user already has `current` of at most the cap. */
  async assertUnderLimit(user: UserRow, name: keyof Config['userLimits'], current: number): Promise<void> {
    const limit = await this.limitFor(user, name);
    if (current >= limit) {
      const label = name === 'apiKeys' ? 'API keys' : name;
      throw new AppError(403, 'limit_reached', `This user has reached the limit of ${limit} ${label}.`, { extra: { limit, resource: label } });
    }
  }

  /** The id of the credential's own user, remembered per process (ids never change). */
  async credentialUserId(principal: Principal): Promise<string> {
    const cached = this.credentialUserIds.get(credentialExternalId(principal));
    return cached ?? (await this.credentialUser(principal)).id;
  }

  /**
   * X-Username (or a token's name) is the user's current display name: a bot that learns the name
   * later, or a Discord user who renames, is seen under the new name. Written only when it changed.
   */
  private async keepUsernameCurrent(user: UserRow, username: string | undefined): Promise<UserRow> {
    if (username === undefined || username === '' || user.username === username) return user;
    return (await this.updateUserRow(this.dependencies.db, user.id, { username })) ?? user;
  }

  private assertActive(user: UserRow): void {
    if (!user.active) throw new ForbiddenError('This user is deactivated.');
  }
}

function credentialExternalId(principal: Principal): string {
  if (principal.credential === 'api_key' && principal.apiKeyId) return `${RESERVED_EXTERNAL_ID_PREFIX}key:${principal.apiKeyId}`;
  return `${RESERVED_EXTERNAL_ID_PREFIX}${principal.credential === 'admin_env' ? 'admin' : 'internal'}`;
}

const CURSOR_TIME_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A cursor of the admin user list: `[created_at as exact UTC text, id]`, base64url; anything else is a 422. */
function decodeUserCursor(cursor: string | undefined): { createdAt: string; id: string } | undefined {
  if (cursor === undefined) return undefined;
  try {
    const decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(decoded) && decoded.length === 2) {
      const [createdAt, id] = decoded as unknown[];
      if (typeof createdAt === 'string' && typeof id === 'string' && CURSOR_TIME_PATTERN.test(createdAt) && UUID_PATTERN.test(id)) {
        // A real instant (no 30 February): the milliseconds part must read back unchanged.
        const milliseconds = `${createdAt.slice(0, 23)}Z`;
        const parsed = new Date(milliseconds);
        if (!Number.isNaN(parsed.getTime()) && parsed.toISOString() === milliseconds) return { createdAt, id };
      }
    }
  } catch {
    // fall through
  }
  throw new ValidationError('cursor', 'The cursor is not one this API gave out.');
}

export function parseBearer(authorization: string | undefined): string | undefined {
  if (!authorization) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  return match?.[1];
}
