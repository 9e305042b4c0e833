/**
 * A loopback fake of Discord for driving the real discord.js Client: the gateway WebSocket
 * (HELLO → IDENTIFY → READY + GUILD_CREATE, heartbeats and ACKs, RESUME, MESSAGE_CREATE and
 * INTERACTION_CREATE dispatch) and the REST routes a bot uses (messages, typing, channels,
 * webhooks create/list/execute, interaction callbacks, edits and follow-ups, command registration),
 * plus a small CDN serving the attachments users "upload". Point discord.js at it with
 * `new Client({ rest: { api: fake.restApi } })`: the gateway URL comes from `GET /gateway/bot`.
 *
 * Wire shapes follow ../shared/docs/provider-apis.md §7 and §12 (Discord API v10): JSON errors
 * `{message, code}`, 50013 Missing Permissions, 10015 Unknown Webhook, 50035 Invalid Form Body
 * (content over 2,000 characters), 30007 too many webhooks; webhook execution with `wait=true`.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export const CHANNEL_TYPES = { GuildText: 0, DM: 1, GuildCategory: 4, PublicThread: 11 } as const;
/** Discord's permission bits used here. */
export const PERMISSIONS = {
  ManageChannels: 1n << 4n,
  ViewChannel: 1n << 10n,
  SendMessages: 1n << 11n,
  ManageMessages: 1n << 13n,
  AttachFiles: 1n << 15n,
  ReadMessageHistory: 1n << 16n,
  ManageWebhooks: 1n << 29n,
  Administrator: 1n << 3n,
} as const;
const ALL_MEMBER_PERMISSIONS = PERMISSIONS.ViewChannel | PERMISSIONS.SendMessages | PERMISSIONS.ReadMessageHistory | PERMISSIONS.AttachFiles;

export interface FakeUser {
  id: string;
  username: string;
  global_name?: string | null;
  bot?: boolean;
}

export interface FakeChannel {
  id: string;
  name: string;
  type: number;
  guild_id?: string;
  parent_id?: string | null;
  /** The bot may create and use webhooks here (default true). */
  manageWebhooks?: boolean;
  /** The bot may delete others' messages here (default true). */
  manageMessages?: boolean;
}

export interface FakeGuild {
  id: string;
  name: string;
  channels: FakeChannel[];
}

export interface FakeAttachment {
  filename: string;
  contentType: string;
  bytes: Buffer;
  /** Voice messages carry a duration and the IS_VOICE_MESSAGE flag on the message. */
  durationSecs?: number;
}

export interface StoredFile {
  name: string;
  contentType: string;
  bytes: Buffer;
}

/** A message as the fake holds it: what users sent, what the bot and its webhooks posted. */
export interface FakeMessage {
  id: string;
  channel_id: string;
  guild_id?: string;
  author: FakeUser & { avatar: string | null; discriminator: string };
  content: string;
  /** Who posted it: a user (dispatched by the test), the bot over REST, a webhook, or an interaction response. */
  source: 'user' | 'bot' | 'webhook' | 'interaction';
  webhook_id?: string;
  /** The webhook persona's avatar_url, when one was given. */
  avatar_url?: string;
  thread_id?: string;
  embeds: Array<Record<string, unknown>>;
  files: StoredFile[];
  attachments: Array<Record<string, unknown>>;
  message_reference?: { message_id: string; channel_id: string; guild_id?: string };
  flags: number;
  /** For interaction responses: the interaction answered, and whether it was ephemeral. */
  interaction_id?: string;
  ephemeral?: boolean;
  deleted?: boolean;
  timestamp: string;
}

export interface FakeWebhook {
  id: string;
  token: string;
  channel_id: string;
  guild_id: string;
  name: string;
  application_id: string;
}

export interface InteractionRecord {
  id: string;
  token: string;
  /** Callback types received, in order (4 reply, 5 deferred reply…). */
  callbacks: number[];
  /** The original response as last written (reply or editReply). */
  original?: FakeMessage;
  followUps: FakeMessage[];
  /** When the first callback arrived, in ms after dispatch. */
  acknowledgedAfterMs?: number;
  dispatchedAt: number;
}

export interface DiscordFakeOptions {
  token?: string;
  applicationId?: string;
  botUser?: FakeUser;
  guilds?: FakeGuild[];
  heartbeatIntervalMs?: number;
}

type Waiter = { predicate: () => boolean; resolve: () => void };

let snowflakeCounter = 0n;
/** Snowflake-shaped ids (17–19 digits, increasing), as discord.js validates some of them. */
export function snowflake(): string {
  snowflakeCounter += 1n;
  return (((BigInt(Date.now()) - 1420070400000n) << 22n) + snowflakeCounter).toString();
}

export class DiscordFake {
  readonly token: string;
  readonly applicationId: string;
  readonly botUser: FakeUser;
  readonly guilds: FakeGuild[];
  readonly channels = new Map<string, FakeChannel>();
  readonly messages: FakeMessage[] = [];
  readonly webhooks = new Map<string, FakeWebhook>();
  readonly interactions = new Map<string, InteractionRecord>();
  readonly typing: Array<{ channelId: string; at: number }> = [];
  readonly commands = new Map<string, Array<Record<string, unknown>>>();
  /** Every REST request: method, path (after /api/v10), status answered. */
  readonly restLog: Array<{ method: string; path: string; status: number }> = [];
  readonly gatewayLog: Array<{ op: number; t?: string | null }> = [];
  identifies = 0;
  resumes = 0;
  heartbeats = 0;
  url = '';
  private readonly files = new Map<string, StoredFile>();
  private readonly server = createServer((request, response) => void this.handle(request, response));
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly sockets = new Set<Socket>();
  private readonly heartbeatIntervalMs: number;
  private socket: WebSocket | undefined;
  private sequence = 0;
  private readonly sessionId = randomBytes(16).toString('hex');
  private waiters: Waiter[] = [];

  constructor(options: DiscordFakeOptions = {}) {
    this.token = options.token ?? `fake.${randomBytes(12).toString('hex')}`;
    this.applicationId = options.applicationId ?? snowflake();
    this.botUser = options.botUser ?? { id: snowflake(), username: 'Anima', bot: true };
    this.guilds = options.guilds ?? [];
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 41_250;
    for (const guild of this.guilds) for (const channel of guild.channels) this.channels.set(channel.id, { ...channel, guild_id: guild.id });
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    this.server.on('upgrade', (request, socket, head) => {
      if (!request.url?.startsWith('/gateway')) {
        socket.destroy();
        return;
      }
      this.wss.handleUpgrade(request, socket, head, (ws) => this.onGateway(ws));
    });
  }

  /** The REST base discord.js takes as `rest.api` (it appends `/v10`). */
  get restApi(): string {
    return `${this.url}/api`;
  }

  get connected(): boolean {
    return this.socket?.readyState === 1;
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    this.wss.close();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Drops the gateway connection (as Discord does on a restart); discord.js should resume. */
  dropGateway(code = 4000): void {
    this.socket?.close(code, 'fake: connection dropped');
  }

  // ---------- what users do ----------

  /** A user posts a message; it is dispatched as MESSAGE_CREATE and stored. */
  userMessage(input: {
    author: FakeUser;
    channelId: string;
    content: string;
    nick?: string;
    mentions?: FakeUser[];
    replyTo?: string;
    attachments?: FakeAttachment[];
    voiceMessage?: boolean;
  }): FakeMessage {
    const channel = this.requireChannel(input.channelId);
    const guildId = channel.guild_id;
    const attachments = (input.attachments ?? []).map((attachment) => {
      const id = snowflake();
      const path = `/attachments/${input.channelId}/${id}/${attachment.filename}`;
      this.files.set(path, { name: attachment.filename, contentType: attachment.contentType, bytes: attachment.bytes });
      return {
        id,
        filename: attachment.filename,
        size: attachment.bytes.length,
        url: `${this.url}${path}`,
        proxy_url: `${this.url}${path}`,
        content_type: attachment.contentType,
        ...(attachment.durationSecs !== undefined ? { duration_secs: attachment.durationSecs, waveform: 'AAAA' } : {}),
      };
    });
    const referenced = input.replyTo ? this.messages.find((message) => message.id === input.replyTo) : undefined;
    const message: FakeMessage = {
      id: snowflake(),
      channel_id: input.channelId,
      ...(guildId ? { guild_id: guildId } : {}),
      author: { discriminator: '0', avatar: null, global_name: null, ...input.author },
      content: input.content,
      source: 'user',
      embeds: [],
      files: [],
      attachments,
      flags: input.voiceMessage ? 1 << 13 : 0,
      timestamp: new Date().toISOString(),
      ...(referenced ? { message_reference: { message_id: referenced.id, channel_id: referenced.channel_id, ...(guildId ? { guild_id: guildId } : {}) } } : {}),
    };
    this.messages.push(message);
    this.dispatch('MESSAGE_CREATE', {
      ...this.wireMessage(message),
      // Discord adds the channel type to gateway messages; discord.js needs it to build an uncached DM channel.
      channel_type: channel.type,
      mentions: (input.mentions ?? []).map((user) => this.wireUser(user)),
      ...(guildId ? { member: { nick: input.nick ?? null, roles: [], joined_at: new Date(0).toISOString(), deaf: false, mute: false, flags: 0 } } : {}),
      ...(referenced ? { referenced_message: this.wireMessage(referenced) } : {}),
    });
    this.notify();
    return message;
  }

  /** A user runs a slash command; dispatched as INTERACTION_CREATE. */
  slashCommand(input: {
    user: FakeUser;
    channelId: string;
    name: string;
    subcommand?: string;
    options?: Record<string, string | number | boolean>;
    /** The member's permissions in the channel (default: ordinary member). */
    permissions?: bigint;
  }): InteractionRecord {
    const channel = this.requireChannel(input.channelId);
    const optionType = (value: string | number | boolean) => (typeof value === 'boolean' ? 5 : typeof value === 'number' ? 10 : 3);
    const leafOptions = Object.entries(input.options ?? {}).map(([name, value]) => ({ name, type: optionType(value), value }));
    const options = input.subcommand ? [{ name: input.subcommand, type: 1, options: leafOptions }] : leafOptions;
    const record: InteractionRecord = { id: snowflake(), token: `itoken-${randomBytes(24).toString('hex')}`, callbacks: [], followUps: [], dispatchedAt: Date.now() };
    this.interactions.set(record.token, record);
    const user = { ...this.wireUser(input.user) };
    this.dispatch('INTERACTION_CREATE', {
      id: record.id,
      application_id: this.applicationId,
      type: 2,
      token: record.token,
      version: 1,
      data: { id: snowflake(), name: input.name, type: 1, options },
      channel_id: channel.id,
      channel: this.wireChannel(channel),
      ...(channel.guild_id
        ? {
            guild_id: channel.guild_id,
            member: { user, nick: null, roles: [], joined_at: new Date(0).toISOString(), deaf: false, mute: false, flags: 0, permissions: String(input.permissions ?? ALL_MEMBER_PERMISSIONS) },
          }
        : { user }),
      app_permissions: String(this.botPermissions(channel)),
      locale: 'en-US',
      guild_locale: 'en-US',
      entitlements: [],
      authorizing_integration_owners: {},
      context: channel.guild_id ? 0 : 1,
    });
    return record;
  }

  // ---------- what tests read ----------

  /** Messages posted in a channel by the bot side (bot, webhooks), oldest first. */
  botMessages(channelId: string): FakeMessage[] {
    return this.messages.filter((message) => message.channel_id === channelId && (message.source === 'bot' || message.source === 'webhook') && !message.deleted);
  }

  /** Resolves once `predicate` holds (checked after every change), or rejects after `timeoutMs`. */
  async waitFor<T>(probe: () => T | undefined | false, timeoutMs = 20_000, what = 'condition'): Promise<T> {
    const check = () => probe();
    const found = check();
    if (found) return found;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((waiter) => waiter !== entry);
        reject(new Error(`Discord fake: timed out waiting for ${what}`));
      }, timeoutMs);
      const entry: Waiter = {
        predicate: () => Boolean(check()),
        resolve: () => {
          clearTimeout(timer);
          resolve(check() as T);
        },
      };
      this.waiters.push(entry);
    });
  }

  /** Removes a webhook as a server admin would; the next execute answers 404 Unknown Webhook. */
  deleteWebhook(id: string): void {
    this.webhooks.delete(id);
  }

  fileAt(url: string): StoredFile | undefined {
    return this.files.get(new URL(url).pathname);
  }

  // ---------- gateway ----------

  private onGateway(ws: WebSocket): void {
    this.socket?.terminate();
    this.socket = ws;
    this.send(ws, { op: 10, d: { heartbeat_interval: this.heartbeatIntervalMs }, s: null, t: null });
    ws.on('message', (raw) => {
      let packet: { op: number; d: Record<string, unknown> | null };
      try {
        packet = JSON.parse((raw as Buffer).toString('utf8')) as typeof packet;
      } catch {
        ws.close(4002, 'Decode error');
        return;
      }
      this.gatewayLog.push({ op: packet.op });
      switch (packet.op) {
        case 1:
          this.heartbeats += 1;
          this.send(ws, { op: 11, d: null, s: null, t: null });
          break;
        case 2: {
          if (packet.d?.token !== this.token) {
            ws.close(4004, 'Authentication failed.');
            return;
          }
          this.identifies += 1;
          this.sequence = 0;
          this.dispatch('READY', {
            v: 10,
            user: this.wireUser(this.botUser),
            guilds: this.guilds.map((guild) => ({ id: guild.id, unavailable: true })),
            session_id: this.sessionId,
            resume_gateway_url: `${this.url.replace('http', 'ws')}/gateway`,
            shard: [0, 1],
            application: { id: this.applicationId, flags: 0 },
          });
          for (const guild of this.guilds) this.dispatch('GUILD_CREATE', this.wireGuild(guild));
          break;
        }
        case 6:
          this.resumes += 1;
          this.dispatch('RESUMED', {});
          break;
        default:
          break;
      }
      this.notify();
    });
  }

  private send(ws: WebSocket, packet: unknown): void {
    if (ws.readyState === 1) ws.send(JSON.stringify(packet));
  }

  private dispatch(type: string, data: unknown): void {
    if (!this.socket) throw new Error('Discord fake: no gateway connection to dispatch on');
    this.sequence += 1;
    this.gatewayLog.push({ op: 0, t: type });
    this.send(this.socket, { op: 0, t: type, s: this.sequence, d: data });
  }

  // ---------- REST ----------

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const url = new URL(request.url ?? '/', this.url);
    const method = request.method ?? 'GET';
    const reply = (status: number, body?: unknown) => {
      this.restLog.push({ method, path: url.pathname.replace(/^\/api\/v10/, ''), status });
      if (body === undefined) {
        response.writeHead(status).end();
      } else {
        response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      }
      this.notify();
    };
    const error = (status: number, code: number, message: string) => reply(status, { message, code });

    if (method === 'GET' && url.pathname.startsWith('/attachments/')) {
      const file = this.files.get(url.pathname);
      if (!file) return reply(404, { message: 'Not found', code: 0 });
      response.writeHead(200, { 'content-type': file.contentType, 'content-length': file.bytes.length }).end(file.bytes);
      return;
    }
    if (!url.pathname.startsWith('/api/v10/')) return error(404, 0, '404: Not Found');
    const path = url.pathname.slice('/api/v10'.length);
    const isWebhookExecution = /^\/webhooks\/[^/]+\/[^/]+/.test(path);
    const isInteractionCallback = /^\/interactions\//.test(path);
    if (!isWebhookExecution && !isInteractionCallback && request.headers.authorization !== `Bot ${this.token}`) {
      return error(401, 0, '401: Unauthorized');
    }
    let payload: Record<string, unknown> = {};
    let files: StoredFile[] = [];
    try {
      ({ payload, files } = await parseBody(raw, request.headers['content-type']));
    } catch {
      return error(400, 50109, 'The request body contains invalid JSON.');
    }
    let match: RegExpExecArray | null;

    if (method === 'GET' && path === '/gateway/bot') {
      return reply(200, {
        url: `${this.url.replace('http', 'ws')}/gateway`,
        shards: 1,
        session_start_limit: { total: 1000, remaining: 999, reset_after: 14_400_000, max_concurrency: 1 },
      });
    }
    if (method === 'GET' && path === '/users/@me') return reply(200, this.wireUser(this.botUser));
    if ((match = /^\/applications\/([^/]+)(?:\/guilds\/([^/]+))?\/commands$/.exec(path)) && method === 'PUT') {
      const list = (Array.isArray(payload) ? payload : []) as Array<Record<string, unknown>>;
      const registered = list.map((command) => ({ ...command, id: snowflake(), application_id: this.applicationId, version: snowflake() }));
      this.commands.set(match[2] ?? 'global', registered);
      return reply(200, registered);
    }
    if (method === 'POST' && path === '/users/@me/channels') {
      const recipient = String(payload.recipient_id);
      const existing = [...this.channels.values()].find((channel) => channel.type === CHANNEL_TYPES.DM && channel.name === recipient);
      const channel = existing ?? { id: snowflake(), name: recipient, type: CHANNEL_TYPES.DM };
      this.channels.set(channel.id, channel);
      return reply(200, this.wireChannel(channel));
    }
    if ((match = /^\/channels\/([^/]+)$/.exec(path)) && method === 'GET') {
      const channel = this.channels.get(match[1]!);
      return channel ? reply(200, this.wireChannel(channel)) : error(404, 10003, 'Unknown Channel');
    }
    if ((match = /^\/channels\/([^/]+)\/typing$/.exec(path)) && method === 'POST') {
      this.typing.push({ channelId: match[1]!, at: Date.now() });
      return reply(204);
    }
    if ((match = /^\/channels\/([^/]+)\/messages$/.exec(path)) && method === 'POST') {
      const channel = this.channels.get(match[1]!);
      if (!channel) return error(404, 10003, 'Unknown Channel');
      const invalid = validateContent(payload);
      if (invalid) return reply(400, invalid);
      const reference = payload.message_reference as { message_id?: string } | undefined;
      const message = this.store({
        channel_id: channel.id,
        guild_id: channel.guild_id,
        author: this.botUser,
        content: text(payload.content),
        source: 'bot',
        embeds: (payload.embeds as FakeMessage['embeds'] | undefined) ?? [],
        files,
        ...(reference?.message_id ? { message_reference: { message_id: reference.message_id, channel_id: channel.id } } : {}),
      });
      return reply(200, this.wireMessage(message));
    }
    if ((match = /^\/channels\/([^/]+)\/messages\/([^/]+)$/.exec(path)) && method === 'DELETE') {
      const channel = this.channels.get(match[1]!);
      const message = this.messages.find((item) => item.id === match![2] && item.channel_id === match![1]);
      if (!channel || !message) return error(404, 10008, 'Unknown Message');
      if (message.author.id !== this.botUser.id && channel.manageMessages === false) return error(403, 50013, 'Missing Permissions');
      message.deleted = true;
      return reply(204);
    }
    if ((match = /^\/channels\/([^/]+)\/webhooks$/.exec(path))) {
      const channel = this.channels.get(match[1]!);
      if (!channel) return error(404, 10003, 'Unknown Channel');
      if (channel.manageWebhooks === false) return error(403, 50013, 'Missing Permissions');
      if (method === 'GET') {
        return reply(200, [...this.webhooks.values()].filter((webhook) => webhook.channel_id === channel.id).map((webhook) => this.wireWebhook(webhook)));
      }
      if (method === 'POST') {
        const name = text(payload.name);
        if (!name || name.length > 80 || /clyde|discord/i.test(name)) return reply(400, { message: 'Invalid Form Body', code: 50035, errors: { name: { _errors: [{ code: 'BASE_TYPE_BAD_NAME', message: 'Invalid webhook name' }] } } });
        if ([...this.webhooks.values()].filter((webhook) => webhook.channel_id === channel.id).length >= 15) return error(400, 30007, 'Maximum number of webhooks reached (15)');
        const webhook: FakeWebhook = { id: snowflake(), token: randomBytes(34).toString('hex'), channel_id: channel.id, guild_id: channel.guild_id ?? '', name, application_id: this.applicationId };
        this.webhooks.set(webhook.id, webhook);
        return reply(200, this.wireWebhook(webhook));
      }
    }
    // Interaction callbacks and the interaction webhook (edits, follow-ups).
    if ((match = /^\/interactions\/([^/]+)\/([^/]+)\/callback$/.exec(path)) && method === 'POST') {
      const record = this.interactions.get(match[2]!);
      if (!record || record.id !== match[1]) return error(404, 10062, 'Unknown interaction');
      if (record.callbacks.length > 0) return error(400, 40060, 'Interaction has already been acknowledged.');
      const type = Number(payload.type);
      record.callbacks.push(type);
      record.acknowledgedAfterMs = Date.now() - record.dispatchedAt;
      const data = (payload.data as Record<string, unknown> | undefined) ?? {};
      if (type === 4) {
        const invalid = validateContent(data);
        if (invalid) return reply(400, invalid);
      }
      record.original = this.interactionMessage(record, data, files, type === 5 ? '' : undefined);
      const withResponse = url.searchParams.get('with_response') === 'true';
      return withResponse ? reply(200, { interaction: { id: record.id, type: 2 }, resource: { type, message: this.wireMessage(record.original) } }) : reply(204);
    }
    if ((match = /^\/webhooks\/([^/]+)\/([^/]+)\/messages\/([^/]+)$/.exec(path)) && match[1] === this.applicationId) {
      const record = this.interactions.get(match[2]!);
      if (!record) return error(404, 10015, 'Unknown Webhook');
      if (method === 'PATCH') {
        const invalid = validateContent(payload);
        if (invalid) return reply(400, invalid);
        record.original = this.interactionMessage(record, payload, files, undefined, record.original);
        return reply(200, this.wireMessage(record.original));
      }
      if (method === 'GET' && record.original) return reply(200, this.wireMessage(record.original));
      if (method === 'DELETE') return reply(204);
    }
    if ((match = /^\/webhooks\/([^/]+)\/([^/]+)$/.exec(path)) && method === 'POST') {
      if (match[1] === this.applicationId) {
        const record = this.interactions.get(match[2]!);
        if (!record) return error(404, 10015, 'Unknown Webhook');
        const invalid = validateContent(payload);
        if (invalid) return reply(400, invalid);
        const followUp = this.interactionMessage(record, payload, files);
        record.followUps.push(followUp);
        return reply(200, this.wireMessage(followUp));
      }
      const webhook = this.webhooks.get(match[1]!);
      if (!webhook) return error(404, 10015, 'Unknown Webhook');
      if (webhook.token !== match[2]) return error(401, 50027, 'Invalid Webhook Token');
      const invalid = validateContent(payload);
      if (invalid) return reply(400, invalid);
      const threadId = url.searchParams.get('thread_id') ?? undefined;
      const message = this.store({
        channel_id: threadId ?? webhook.channel_id,
        guild_id: webhook.guild_id,
        author: { id: webhook.id, username: text(payload.username) || webhook.name, bot: true },
        content: text(payload.content),
        source: 'webhook',
        webhook_id: webhook.id,
        ...(payload.avatar_url ? { avatar_url: text(payload.avatar_url) } : {}),
        ...(threadId ? { thread_id: threadId } : {}),
        embeds: (payload.embeds as FakeMessage['embeds'] | undefined) ?? [],
        files,
      });
      return url.searchParams.get('wait') === 'true' ? reply(200, this.wireMessage(message)) : reply(204);
    }
    return error(404, 0, `404: Not Found (${method} ${path})`);
  }

  private interactionMessage(record: InteractionRecord, data: Record<string, unknown>, files: StoredFile[], content?: string, previous?: FakeMessage): FakeMessage {
    const flags = Number(data.flags ?? previous?.flags ?? 0);
    return {
      id: previous?.id ?? snowflake(),
      channel_id: '',
      author: { ...this.botUser, avatar: null, discriminator: '0' },
      content: content ?? (data.content === undefined ? (previous?.content ?? '') : text(data.content)),
      source: 'interaction',
      embeds: (data.embeds as FakeMessage['embeds'] | undefined) ?? previous?.embeds ?? [],
      files: files.length > 0 ? files : (previous?.files ?? []),
      attachments: [],
      flags,
      interaction_id: record.id,
      ephemeral: (flags & 64) !== 0,
      timestamp: new Date().toISOString(),
    };
  }

  private store(input: Omit<FakeMessage, 'id' | 'author' | 'attachments' | 'flags' | 'timestamp'> & { author: FakeUser }): FakeMessage {
    const message: FakeMessage = {
      ...input,
      id: snowflake(),
      author: { discriminator: '0', avatar: null, global_name: null, ...input.author },
      attachments: input.files.map((file) => {
        const id = snowflake();
        const path = `/attachments/${input.channel_id}/${id}/${file.name}`;
        this.files.set(path, file);
        return { id, filename: file.name, size: file.bytes.length, url: `${this.url}${path}`, proxy_url: `${this.url}${path}`, content_type: file.contentType };
      }),
      flags: 0,
      timestamp: new Date().toISOString(),
    };
    if (!message.guild_id) delete message.guild_id;
    this.messages.push(message);
    return message;
  }

  private notify(): void {
    const ready = this.waiters.filter((waiter) => waiter.predicate());
    this.waiters = this.waiters.filter((waiter) => !ready.includes(waiter));
    for (const waiter of ready) waiter.resolve();
  }

  private requireChannel(id: string): FakeChannel {
    const channel = this.channels.get(id);
    if (!channel) throw new Error(`Discord fake: unknown channel ${id}`);
    return channel;
  }

  private botPermissions(channel: FakeChannel): bigint {
    let permissions = ALL_MEMBER_PERMISSIONS;
    if (channel.manageWebhooks !== false) permissions |= PERMISSIONS.ManageWebhooks;
    if (channel.manageMessages !== false) permissions |= PERMISSIONS.ManageMessages;
    return permissions;
  }

  /** Opens (or returns) the DM channel between the bot and a user, as Discord does on first contact. */
  dmChannel(user: FakeUser): FakeChannel {
    const existing = [...this.channels.values()].find((channel) => channel.type === CHANNEL_TYPES.DM && channel.name === user.id);
    if (existing) return existing;
    const channel: FakeChannel = { id: snowflake(), name: user.id, type: CHANNEL_TYPES.DM };
    this.channels.set(channel.id, channel);
    return channel;
  }

  private wireUser(user: FakeUser) {
    return { id: user.id, username: user.username, global_name: user.global_name ?? null, discriminator: '0', avatar: null, bot: user.bot ?? false };
  }

  private wireChannel(channel: FakeChannel) {
    if (channel.type === CHANNEL_TYPES.DM) {
      const recipient = { id: channel.name, username: `user-${channel.name}` };
      return { id: channel.id, type: channel.type, last_message_id: null, recipients: [this.wireUser(recipient)] };
    }
    return {
      id: channel.id,
      type: channel.type,
      name: channel.name,
      guild_id: channel.guild_id,
      parent_id: channel.parent_id ?? null,
      position: 0,
      permission_overwrites: [],
      ...(channel.type === CHANNEL_TYPES.PublicThread ? { owner_id: this.botUser.id, thread_metadata: { archived: false, locked: false, auto_archive_duration: 1440, archive_timestamp: new Date().toISOString() }, member_count: 1, message_count: 0 } : {}),
    };
  }

  private wireGuild(guild: FakeGuild) {
    const everyone = { id: guild.id, name: '@everyone', permissions: String(ALL_MEMBER_PERMISSIONS), position: 0, color: 0, hoist: false, managed: false, mentionable: false, flags: 0 };
    return {
      id: guild.id,
      name: guild.name,
      icon: null,
      owner_id: snowflake(),
      roles: [everyone],
      emojis: [],
      stickers: [],
      features: [],
      member_count: 2,
      members: [{ user: this.wireUser(this.botUser), roles: [], joined_at: new Date(0).toISOString(), deaf: false, mute: false, flags: 0 }],
      channels: guild.channels.filter((channel) => channel.type !== CHANNEL_TYPES.PublicThread).map((channel) => this.wireChannel({ ...channel, guild_id: guild.id })),
      threads: guild.channels.filter((channel) => channel.type === CHANNEL_TYPES.PublicThread).map((channel) => this.wireChannel({ ...channel, guild_id: guild.id })),
      presences: [],
      voice_states: [],
      large: false,
      unavailable: false,
      joined_at: new Date(0).toISOString(),
      preferred_locale: 'en-US',
      premium_tier: 0,
      system_channel_flags: 0,
      verification_level: 0,
      default_message_notifications: 0,
      explicit_content_filter: 0,
      mfa_level: 0,
      nsfw_level: 0,
    };
  }

  private wireWebhook(webhook: FakeWebhook) {
    return {
      id: webhook.id,
      type: 1,
      token: webhook.token,
      channel_id: webhook.channel_id,
      guild_id: webhook.guild_id,
      name: webhook.name,
      avatar: null,
      application_id: webhook.application_id,
      user: this.wireUser(this.botUser),
    };
  }

  private wireMessage(message: FakeMessage) {
    return {
      id: message.id,
      type: message.message_reference ? 19 : 0,
      channel_id: message.channel_id,
      ...(message.guild_id ? { guild_id: message.guild_id } : {}),
      author: message.author,
      content: message.content,
      timestamp: message.timestamp,
      edited_timestamp: null,
      tts: false,
      mention_everyone: false,
      mentions: [],
      mention_roles: [],
      attachments: message.attachments,
      embeds: message.embeds,
      pinned: false,
      flags: message.flags,
      ...(message.webhook_id ? { webhook_id: message.webhook_id } : {}),
      ...(message.message_reference ? { message_reference: message.message_reference } : {}),
    };
  }
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/** Discord's 2,000-character limit, answered as its 50035 Invalid Form Body. */
function validateContent(payload: Record<string, unknown>): unknown {
  const content = payload.content;
  if (typeof content === 'string' && content.length > 2000) {
    return { message: 'Invalid Form Body', code: 50035, errors: { content: { _errors: [{ code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 2000 or fewer in length.' }] } } };
  }
  return undefined;
}

/** JSON, or multipart with `payload_json` and `files[n]` parts (how discord.js sends attachments). */
async function parseBody(raw: Buffer, contentType: string | undefined): Promise<{ payload: Record<string, unknown>; files: StoredFile[] }> {
  if (raw.length === 0) return { payload: {}, files: [] };
  if (contentType?.startsWith('multipart/form-data')) {
    const form = await new Response(new Uint8Array(raw), { headers: { 'content-type': contentType } }).formData();
    const files: StoredFile[] = [];
    let payload: Record<string, unknown> = {};
    for (const [name, value] of form as unknown as Iterable<[string, string | File]>) {
      if (name === 'payload_json' && typeof value === 'string') payload = JSON.parse(value) as Record<string, unknown>;
      else if (typeof value !== 'string') files.push({ name: value.name, contentType: value.type, bytes: Buffer.from(await value.arrayBuffer()) });
    }
    return { payload, files };
  }
  return { payload: JSON.parse(raw.toString('utf8')) as Record<string, unknown>, files: [] };
}

export async function startDiscordFake(options: DiscordFakeOptions = {}): Promise<DiscordFake> {
  const fake = new DiscordFake(options);
  await fake.listen();
  return fake;
}
