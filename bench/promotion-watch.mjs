/**
 * A preload for a benchmark's server (`CHILD_NODE_ARGS="--import $PWD/bench/promotion-watch.mjs"`): what a
 * loaded server's allocations that outlive young collections are, and where they were made — the bytes that
 * reach the old generation and so set how often a major collection (the p99's stalls, sixteenth pass) runs.
 *
 * It counts HTTP requests (diagnostics_channel `http.server.request.start`); after PROMOTION_WATCH_SKIP requests
 * (default 1500, past the warm-up) it starts V8's sampling heap profiler with objects that young collections
 * free left out (`includeObjectsCollectedByMinorGC: false`, kept: those a major collection frees, since they were
 * promoted all the same); after PROMOTION_WATCH_REQUESTS more (default 2000) it stops at the next young
 * collection, so what remains young is only what that collection kept. It writes
 * `<PROMOTION_WATCH_DIR or tmpdir>/anima-promotion-<pid>.heapprofile` (open in Chrome DevTools) and `.txt`: the
 * window's requests, young and major collections, old space's growth, and the sampled bytes a request by the
 * allocating function, by the first frame of Anima's own bundle on the stack, and by the first package frame.
 * Main thread only. For investigations, not figures: sampling costs CPU.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';
import { isMainThread } from 'node:worker_threads';

if (isMainThread) {
  const skip = Number(process.env.PROMOTION_WATCH_SKIP ?? 1500);
  const windowRequests = Number(process.env.PROMOTION_WATCH_REQUESTS ?? 2000);
  const interval = Number(process.env.PROMOTION_WATCH_INTERVAL ?? 1024);
  const out = path.join(process.env.PROMOTION_WATCH_DIR ?? tmpdir(), `anima-promotion-${process.pid}`);
  const session = new Session();
  session.connect();
  const post = (method, params) => new Promise((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))));
  const oldSpace = () => v8.getHeapSpaceStatistics().find((space) => space.space_name === 'old_space')?.space_used_size ?? 0;

  let requests = 0;
  let state = 'waiting';
  let started;
  let minor = 0;
  let major = 0;
  diagnosticsChannel.subscribe('http.server.request.start', () => {
    requests += 1;
    if (state === 'waiting' && requests >= skip) {
      state = 'sampling';
      started = { requests, old: oldSpace(), at: Date.now() };
      minor = 0;
      major = 0;
      void post('HeapProfiler.startSampling', { samplingInterval: interval, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: false });
    } else if (state === 'sampling' && requests >= started.requests + windowRequests) {
      state = 'stopping';
    }
  });
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = entry.detail?.kind;
      if (state === 'sampling' || state === 'stopping') {
        if (kind === 1 || kind === 2) minor += 1;
        if (kind === 4) major += 1;
      }
      if (state === 'stopping' && (kind === 1 || kind === 2)) {
        state = 'done';
        const ended = { requests, old: oldSpace(), at: Date.now() };
        void post('HeapProfiler.stopSampling').then(({ profile }) => {
          writeFileSync(`${out}.heapprofile`, JSON.stringify(profile));
          writeFileSync(`${out}.txt`, report(profile, started, ended, minor, major));
        });
      }
    }
  }).observe({ entryTypes: ['gc'] });
}

function report(profile, started, ended, minor, major) {
  const perRequest = ended.requests - started.requests;
  const bySite = new Map();
  const byOwn = new Map();
  const byPackage = new Map();
  let total = 0;
  const add = (map, key, bytes) => map.set(key, (map.get(key) ?? 0) + bytes);
  const frame = (node) => `${node.callFrame.functionName || '(anonymous)'} ${shortUrl(node.callFrame.url)}:${node.callFrame.lineNumber + 1}`;
  const walk = (node, stack) => {
    const here = [...stack, node];
    if (node.selfSize > 0) {
      total += node.selfSize;
      add(bySite, frame(node), node.selfSize);
      const own = [...here].reverse().find((n) => n.callFrame.url.includes('/dist/src/'));
      add(byOwn, own ? frame(own) : '(no Anima frame)', node.selfSize);
      const pkg = [...here].reverse().find((n) => n.callFrame.url.includes('/node_modules/'));
      add(byPackage, pkg ? frame(pkg) : '(no package frame)', node.selfSize);
    }
    for (const child of node.children) walk(child, here);
  };
  walk(profile.head, []);
  const top = (map, title) => [
    `\n${title}`,
    ...[...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, 30).map(([key, bytes]) => `${(bytes / perRequest / 1024).toFixed(2).padStart(8)} KB  ${key}`),
  ];
  return [
    `window: ${perRequest} requests in ${((ended.at - started.at) / 1000).toFixed(1)} s; ${minor} young and ${major} major collections`,
    `old space: ${(started.old / 1048576).toFixed(1)} → ${(ended.old / 1048576).toFixed(1)} MB (${major ? 'a major collection ran: not growth' : `${((ended.old - started.old) / perRequest / 1024).toFixed(2)} KB a request`})`,
    `sampled, outliving young collections: ${(total / perRequest / 1024).toFixed(2)} KB a request (${(total / 1048576).toFixed(1)} MB)`,
    ...top(bySite, 'by allocating function (KB a request)'),
    ...top(byOwn, "by Anima's nearest frame"),
    ...top(byPackage, 'by the nearest package frame'),
    '',
  ].join('\n');
}

function shortUrl(url) {
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) return url.slice(modules + '/node_modules/'.length);
  const dist = url.indexOf('/dist/src/');
  if (dist >= 0) return url.slice(dist + 1);
  return url || '(native)';
}
