// Type declarations for the untyped PNG chunk libraries (CommonJS, no @types packages exist).
declare module 'png-chunks-extract' {
  function extractChunks(data: Uint8Array): Array<{ name: string; data: Uint8Array }>;
  export default extractChunks;
}

declare module 'png-chunks-encode' {
  function encodeChunks(chunks: Array<{ name: string; data: Uint8Array }>): Uint8Array;
  export default encodeChunks;
}
