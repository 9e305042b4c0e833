// Type declarations for the untyped PNG chunk libraries (CommonJS, no @types packages exist).
declare module 'png-chunks-extract' {
  function extractChunks(data: Uint8Array): Array<{ name: string; data: Uint8Array }>;
  export default extractChunks;
}

declare module 'png-chunks-encode' {
  function encodeChunks(chunks: Array<{ name: string; data: Uint8Array }>): Uint8Array;
  export default encodeChunks;
}

declare module 'png-chunk-text' {
  export function encode(keyword: string, content: string): { name: 'tEXt'; data: Uint8Array };
  export function decode(data: Uint8Array | { name: string; data: Uint8Array }): { keyword: string; text: string };
}
