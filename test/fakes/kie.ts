/**
 * KIE.ai fake (provider-apis §8): Flux Kontext `POST /api/v1/flux/kontext/generate` → a taskId,
 * `GET /api/v1/flux/kontext/record-info?taskId=` (successFlag 0 → 1, or 2/3 with an error), the
 * CDN serving the result (real PNG or JPEG bytes), and `GET /api/v1/chat/credit`. Every answer is
 * the envelope `{code, msg, data}`; errors come as **HTTP 200 with an error code** by default
 * (what KIE's docs suggest), or with the same HTTP status when `errorsAsHttpStatus` is set.
 * Auth is `Authorization: Bearer <key>`. Its root stands for `https://api.kie.ai`.
 */
import { randomUUID } from 'node:crypto';
import { bearerToken, plainObject, startFakeServer, type FakeContext, type FakeServer } from './fake-server.js';
import { colourFor, servedSize, solidJpeg, solidPng } from './media.js';

export const KIE_ASPECT_SIZES: Record<string, { width: number; height: number }> = {
  '21:9': { width: 1568, height: 672 },
  '16:9': { width: 1392, height: 752 },
  '4:3': { width: 1184, height: 880 },
  '1:1': { width: 1024, height: 1024 },
  '3:4': { width: 880, height: 1184 },
  '9:16': { width: 752, height: 1392 },
  '16:21': { width: 672, height: 1568 },
};

export interface KieSettings {
  validKeys: string[];
  /** Account credits; each task costs `pricePerTask`. Below it: code 402. */
  credits: number;
  pricePerTask: number;
  /** record-info answers successFlag 0 this many times per task before the outcome. */
  generatingPolls: number;
  /** Prompts containing one of these words end with successFlag 3 and errorCode 400 (content policy). */
  blockedWords: string[];
  /** When set, every task ends with this failure (successFlag 2 or 3). */
  failTasks: { successFlag: 2 | 3; errorCode: number | null; errorMessage: string } | null;
  /** Errors as HTTP 200 + envelope code (default), or with the HTTP status equal to the code. */
  errorsAsHttpStatus: boolean;
  /** The envelope's text member: `msg` (Flux Kontext) or `message` (the jobs API's spelling). */
  messageKey: 'msg' | 'message';
  /** Longer side of the served image. Null = the nominal size. */
  servedImageMaxSide: number | null;
  /** When set, the result URL serves these bytes with this content type (e.g. HTML: not an image). */
  resultOverride: { bytes: Buffer; contentType: string } | null;
}

export interface KieTask {
  taskId: string;
  input: Record<string, unknown>;
  polls: number;
  outcome: { successFlag: 1; url: string } | { successFlag: 2 | 3; errorCode: number | null; errorMessage: string };
  createTime: string;
}

export interface KieFake extends FakeServer {
  settings: KieSettings;
  tasks: Map<string, KieTask>;
}

const ERROR_MESSAGES: Record<number, string> = {
  401: 'You do not have access permissions',
  402: 'Insufficient credits',
  404: 'Not found',
  422: 'Validation error',
  429: 'Rate limited',
  455: 'Service unavailable (maintenance)',
  500: 'Server error',
  501: 'Generation failed',
  505: 'Feature disabled',
};

export async function startKieFake(options: Partial<KieSettings> = {}): Promise<KieFake> {
  const settings: KieSettings = {
    validKeys: ['test-key'],
    credits: 1000,
    pricePerTask: 5,
    generatingPolls: 1,
    blockedWords: [],
    failTasks: null,
    errorsAsHttpStatus: false,
    messageKey: 'msg',
    servedImageMaxSide: 64,
    resultOverride: null,
    ...options,
  };
  const tasks = new Map<string, KieTask>();

  const envelope = (code: number, message: string, data: unknown) => ({ code, [settings.messageKey]: message, data });
  const errorBody = (code: number, message?: string) => envelope(code, message ?? ERROR_MESSAGES[code] ?? `Error ${code}`, null);
  const fail = (context: FakeContext, code: number, message?: string) => context.json(settings.errorsAsHttpStatus ? code : 200, errorBody(code, message));

  const generate = async (context: FakeContext): Promise<void> => {
    const input = plainObject(context.request.body);
    const problems: string[] = [];
    if (typeof input.prompt !== 'string' || input.prompt.trim() === '') problems.push('prompt is required');
    const model = input.model ?? 'flux-kontext-pro';
    if (model !== 'flux-kontext-pro' && model !== 'flux-kontext-max') problems.push('model must be flux-kontext-pro or flux-kontext-max');
    const aspectRatio = typeof input.aspectRatio === 'string' ? input.aspectRatio : '16:9';
    const nominal = KIE_ASPECT_SIZES[aspectRatio];
    if (nominal === undefined) problems.push(`aspectRatio must be one of ${Object.keys(KIE_ASPECT_SIZES).join(', ')}`);
    const outputFormat = input.outputFormat ?? 'jpeg';
    if (outputFormat !== 'jpeg' && outputFormat !== 'png') problems.push('outputFormat must be jpeg or png');
    if (problems.length > 0 || nominal === undefined) {
      await fail(context, 422, problems.join('; '));
      return;
    }
    if (settings.credits < settings.pricePerTask) {
      await fail(context, 402);
      return;
    }
    settings.credits -= settings.pricePerTask;
    const prompt = String(input.prompt);
    const taskId = `task_flux_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
    let outcome: KieTask['outcome'];
    if (settings.failTasks) outcome = { ...settings.failTasks };
    else if (settings.blockedWords.some((word) => prompt.toLowerCase().includes(word.toLowerCase()))) {
      outcome = { successFlag: 3, errorCode: 400, errorMessage: 'Your prompt was flagged by the content policy.' };
    } else {
      const served = servedSize(nominal.width, nominal.height, settings.servedImageMaxSide ?? undefined);
      const colour = colourFor(`${prompt}#${taskId}`);
      const url = settings.resultOverride
        ? context.storeFile(settings.resultOverride.bytes, settings.resultOverride.contentType, 'bin')
        : outputFormat === 'png'
          ? context.storeFile(solidPng(served.width, served.height, colour), 'image/png', 'png')
          : context.storeFile(solidJpeg(served.width, served.height, colour), 'image/jpeg', 'jpg');
      outcome = { successFlag: 1, url };
    }
    tasks.set(taskId, { taskId, input, polls: 0, outcome, createTime: new Date().toISOString() });
    context.request.meta.taskId = taskId;
    await context.json(200, envelope(200, 'success', { taskId }));
  };

  const recordInfo = async (context: FakeContext): Promise<void> => {
    const task = tasks.get(context.request.query.taskId ?? '');
    if (task === undefined) {
      await fail(context, 404, 'Task not found');
      return;
    }
    task.polls += 1;
    const base = { taskId: task.taskId, paramJson: JSON.stringify(task.input), createTime: task.createTime };
    if (task.polls <= settings.generatingPolls) {
      await context.json(200, envelope(200, 'success', { ...base, successFlag: 0, response: null, errorCode: null, errorMessage: '', completeTime: null }));
      return;
    }
    const completeTime = new Date().toISOString();
    if (task.outcome.successFlag === 1) {
      await context.json(200, envelope(200, 'success', { ...base, successFlag: 1, response: { originImageUrl: task.outcome.url, resultImageUrl: task.outcome.url }, errorCode: null, errorMessage: '', completeTime }));
      return;
    }
    await context.json(200, envelope(200, 'success', { ...base, successFlag: task.outcome.successFlag, response: null, errorCode: task.outcome.errorCode, errorMessage: task.outcome.errorMessage, completeTime }));
  };

  const server = await startFakeServer(
    async (context) => {
      const key = bearerToken(context.request.headers);
      if (key === undefined || !settings.validKeys.includes(key)) {
        await fail(context, 401);
        return;
      }
      const { method, path } = context.request;
      if (method === 'POST' && path === '/api/v1/flux/kontext/generate') return generate(context);
      if (method === 'GET' && path === '/api/v1/flux/kontext/record-info') return recordInfo(context);
      if (method === 'GET' && path === '/api/v1/chat/credit') {
        await context.json(200, envelope(200, 'success', settings.credits));
        return;
      }
      await fail(context, 404);
    },
    // Injected faults (failNext…) answer like KIE: the envelope, with the HTTP status asked for.
    { errorBody: (status) => errorBody(status) },
  );
  return { ...server, settings, tasks };
}
