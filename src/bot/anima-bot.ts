import { Client, Events, GatewayIntentBits, type Interaction, type Message, Partials, REST, Routes } from 'discord.js';
import type { Logger } from 'pino';
import type { BotConfig } from '../config.js';
import { AnimaClient } from './anima-client.js';
import { commandDefinitions, handleSlashCommand } from './commands.js';
import { BotContext } from './context.js';
import { handleMessage } from './message-handler.js';
import { PersonaPoster } from './personas.js';

export interface AnimaBotOptions {
  /** Random numbers for free will (tests pin them). */
  random?: () => number;
}

/**
 * The Discord bot: the real discord.js Client (gateway with its own reconnect and resume), wired
 * to Anima's HTTP API. `start()` logs in, registers the slash commands; `stop()` stops taking new
 * work, waits for answers in flight (up to SHUTDOWN_GRACE_MS) and disconnects.
 */
export class AnimaBot {
  readonly client: Client;
  readonly context: BotContext;
  private readonly inFlight = new Set<Promise<void>>();
  private stopping = false;

  constructor(
    readonly config: Readonly<BotConfig>,
    private readonly logger: Logger,
    options: AnimaBotOptions = {},
  ) {
    this.client = new Client({
      intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent, GatewayIntentBits.DirectMessages],
      // DMs arrive for channels the client has never seen.
      partials: [Partials.Channel, Partials.Message],
      rest: config.discordApiUrl ? { api: config.discordApiUrl } : {},
      allowedMentions: { parse: [] },
    });
    const anima = new AnimaClient({ baseUrl: config.animaApiUrl, apiKey: config.internalApiKey, timeoutMs: config.requestTimeoutMs });
    this.context = new BotContext(this.client, config, anima, new PersonaPoster(this.client, logger), logger, options.random ?? Math.random);

    this.client.on(Events.MessageCreate, (message: Message) => this.track(() => handleMessage(this.context, message), 'message'));
    this.client.on(Events.InteractionCreate, (interaction: Interaction) => {
      if (interaction.isChatInputCommand()) this.track(() => handleSlashCommand(this.context, interaction), 'command');
    });
    this.client.on(Events.GuildCreate, (guild) => {
      if (this.config.commandScope === 'guild' && this.client.isReady()) this.track(() => this.registerCommands([guild.id]), 'command registration');
    });
    this.client.on(Events.ShardDisconnect, (event, shardId) => this.logger.warn({ code: event.code, shardId }, 'Discord gateway disconnected'));
    this.client.on(Events.ShardReconnecting, (shardId) => this.logger.info({ shardId }, 'reconnecting to the Discord gateway'));
    this.client.on(Events.ShardResume, (shardId, replayed) => this.logger.info({ shardId, replayed }, 'Discord gateway session resumed'));
    this.client.on(Events.Error, (error) => this.logger.error({ err: error }, 'Discord client error'));
  }

  async start(): Promise<void> {
    const ready = new Promise<void>((resolve) => this.client.once(Events.ClientReady, () => resolve()));
    await this.client.login(this.config.discordToken);
    await ready;
    this.logger.info({ user: this.client.user?.tag, guilds: this.client.guilds.cache.size, animaApiUrl: this.config.animaApiUrl }, 'the Anima bot is online');
    await this.registerCommands([...this.client.guilds.cache.keys()]);
  }

  /** Slash commands: per guild (instant) in development, once globally in production. */
  async registerCommands(guildIds: string[]): Promise<void> {
    const applicationId = this.config.discordApplicationId ?? this.client.application?.id;
    if (!applicationId) {
      this.logger.warn('no application id: slash commands not registered (set DISCORD_APPLICATION_ID)');
      return;
    }
    const rest = new REST(this.config.discordApiUrl ? { api: this.config.discordApiUrl } : {}).setToken(this.config.discordToken);
    const body = commandDefinitions();
    if (this.config.commandScope === 'global') {
      await rest.put(Routes.applicationCommands(applicationId), { body });
      this.logger.info({ commands: body.length }, 'slash commands registered globally (they may take up to an hour to appear)');
      return;
    }
    for (const guildId of guildIds) {
      try {
        await rest.put(Routes.applicationGuildCommands(applicationId, guildId), { body });
      } catch (error) {
        this.logger.warn({ err: error, guildId }, 'could not register slash commands in a guild');
      }
    }
    this.logger.info({ commands: body.length, guilds: guildIds.length }, 'slash commands registered per guild');
  }

  /** Answers in flight (for tests and shutdown). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const grace = new Promise<void>((resolve) => setTimeout(resolve, this.config.shutdownGraceMs).unref());
    await Promise.race([this.idle(), grace]);
    await this.client.destroy();
  }

  private track(work: () => Promise<void>, what: string): void {
    if (this.stopping) return;
    const promise = work()
      .catch((error: unknown) => this.logger.error({ err: error }, `unhandled failure in ${what}`))
      .finally(() => this.inFlight.delete(promise));
    this.inFlight.add(promise);
  }
}
