import type { Infrastructure } from '../../container.js';
import { openMediaStore, type MediaStore } from '../../infra/media/index.js';
import type { IdentityModule } from '../identity/index.js';
import type { MemoryModule } from '../memory/index.js';
import type { AppModule } from '../module.js';
import { registerMediaRoutes } from './routes.js';
import { MediaService } from './service.js';

export { MediaService, type MediaKind, type MediaViewer, type SaveMedia, type MediaContent } from './service.js';
export type { MediaRow } from './tables.js';

declare module '../../infra/queue/queue.js' {
  interface JobPayloads {
    'media.sweep': Record<string, never>;
  }
}

export interface MediaModule extends AppModule {
  service: MediaService;
}

export interface MediaModuleDependencies extends Infrastructure {
  identity: IdentityModule;
  memory: MemoryModule;
  /** Another store (tests). */
  store?: MediaStore;
}

const SWEEP_EVERY_MS = 60 * 60 * 1000;

/** Stored media: the MediaStore (files or S3), the `media` table, GET /v1/media/{id}, the retention sweep. */
export function createMediaModule(dependencies: MediaModuleDependencies): MediaModule {
  const { config, db, queue, identity, memory } = dependencies;
  const logger = dependencies.logger.child({ module: 'media' });
  const store = dependencies.store ?? openMediaStore(config.media.store);
  const service = new MediaService({ config, db, store, logger });
  memory.userData.register('media', {
    exportUserData: async (userId) =>
      (await service.listOf(userId)).map((row) => ({
        id: row.id,
        kind: row.kind,
        content_type: row.contentType,
        byte_size: row.byteSize,
        created_at: row.createdAt.toISOString(),
        expires_at: row.expiresAt?.toISOString() ?? null,
        metadata: row.metadata,
      })),
    deleteUserData: async (userId) => {
      await service.deleteAllOf(userId);
    },
  });
  let timer: NodeJS.Timeout | undefined;
  const enqueueSweep = (): void => {
    // One job id per hour: several replicas enqueueing in the same hour coalesce into one sweep
    // (BullMQ keeps finished jobs for a while, so a fixed id would never run twice).
    queue.enqueue('media.sweep', {}, { jobId: `media-sweep-${Math.floor(Date.now() / SWEEP_EVERY_MS)}` }).catch((error: unknown) => logger.warn({ err: error }, 'could not enqueue the media sweep'));
  };
  return {
    name: 'media',
    service,
    jobHandlers: {
      'media.sweep': async () => {
        const removed = await service.sweepExpired();
        if (removed > 0) logger.info({ removed }, 'expired media deleted');
        return removed > 0 ? 'success' : 'skipped';
      },
    },
    registerRoutes: (app) => registerMediaRoutes(app, { media: service, identity: identity.service }),
    start: () => {
      timer = setInterval(enqueueSweep, SWEEP_EVERY_MS);
      timer.unref();
      enqueueSweep();
      return Promise.resolve();
    },
    close: () => {
      if (timer) clearInterval(timer);
      store.close?.();
      return Promise.resolve();
    },
  };
}
