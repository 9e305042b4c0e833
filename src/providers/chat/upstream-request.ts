import { request } from 'undici';

/** What the chat adapters read of an upstream answer: fetch's Response has this shape too. */
export interface UpstreamResponse {
  status: number;
  ok: boolean;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
  /** The body as it arrives (an SSE stream is read from here). */
  body: AsyncIterable<Uint8Array> | null;
}

export interface UpstreamPost {
  headers: Record<string, string>;
  body: string;
  signal: AbortSignal;
}

/**
 * POSTs a JSON body upstream. By default through undici's `request` on its keep-alive pool rather
 * than `fetch`: fetch wraps every answer in WHATWG streams and Response objects, and was a fifth of
 * the main thread's work per chat turn (profiled under `bench/turn-rate.ts`); `request` hands over
 * a Node stream. A `fetch` given in the adapter's options (tests that route or fail requests) is used as it is.
 */
export async function postUpstream(url: string, post: UpstreamPost, fetchImplementation: typeof fetch | undefined): Promise<UpstreamResponse> {
  if (fetchImplementation) {
    const response = await fetchImplementation(url, { method: 'POST', headers: post.headers, body: post.body, signal: post.signal });
    return {
      status: response.status,
      ok: response.ok,
      headers: response.headers,
      text: () => response.text(),
      // Node's web streams are async-iterable; the DOM typings do not say so.
      body: response.body as unknown as AsyncIterable<Uint8Array> | null,
    };
  }
  const answer = await request(url, { method: 'POST', headers: post.headers, body: post.body, signal: post.signal });
  return {
    status: answer.statusCode,
    ok: answer.statusCode >= 200 && answer.statusCode < 300,
    headers: {
      get: (name) => {
        const value = answer.headers[name.toLowerCase()];
        return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
      },
    },
    text: () => answer.body.text(),
    body: answer.body,
  };
}
