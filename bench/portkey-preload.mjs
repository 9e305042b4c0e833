/**
 * Loaded with `node --import` into Portkey's gateway process by bench/turn-rate.ts (unless
 * --portkey-as-shipped), so that Portkey's streamed answers work on Node.
 *
 * Why: @portkey-ai/gateway 1.15.2 serves through @hono/node-server, which npm resolves to ≥ 1.19
 * (its @hono/node-ws needs ^1.19.11). Since 1.14.3 that server installs a lightweight global
 * Response whose `new Response(body, fetchedResponse)` keeps the fetched response's own, immutable
 * Headers. Portkey wraps every streamed upstream answer that way and then appends its x-portkey-*
 * headers, so each streamed request fails with `TypeError: immutable` (HTTP 500, "Something went
 * wrong"): Portkey-AI/gateway#1389 and #1550.
 *
 * The change: when the server installs its Response, a subclass is installed instead that, given a
 * Response from fetch as init, passes a copy of its status, status text and headers (what the fix
 * proposed upstream, Portkey-AI/gateway#1551, does for the streamed path). Nothing else changes.
 */
const NativeResponse = globalThis.Response;
const defineProperty = Object.defineProperty;

Object.defineProperty = function patchedDefineProperty(target, key, descriptor) {
  if (target === globalThis && key === 'Response' && typeof descriptor?.value === 'function' && descriptor.value !== NativeResponse) {
    const Lightweight = descriptor.value;
    class CopyingResponse extends Lightweight {
      constructor(body, init) {
        const foreign = init instanceof NativeResponse && !(init instanceof Lightweight);
        super(body, foreign ? { status: init.status, statusText: init.statusText, headers: new globalThis.Headers(init.headers) } : init);
      }
    }
    Object.defineProperty = defineProperty;
    return defineProperty(target, key, { ...descriptor, value: CopyingResponse });
  }
  return defineProperty(target, key, descriptor);
};
