import { deflateSync } from 'node:zlib';
import extractChunks from 'png-chunks-extract';
import encodeChunks from 'png-chunks-encode';
import * as pngText from 'png-chunk-text';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, startTestServer, type TestResponse, type TestServer } from '../helpers/test-server.js';

/** A 2×2 RGB image, built without the product's code. */
function tinyPng(): Uint8Array {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(2, 0);
  header.writeUInt32BE(2, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const pixels = Buffer.from([0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 0, 0]);
  return encodeChunks([
    { name: 'IHDR', data: header },
    { name: 'IDAT', data: deflateSync(pixels) },
    { name: 'IEND', data: new Uint8Array(0) },
  ]);
}

/** What SillyTavern does on export: tEXt "chara" = base64(V2 JSON), optionally tEXt "ccv3", before IEND. */
function sillyTavernPng(cards: { chara?: unknown; ccv3?: unknown }): Buffer {
  const chunks = extractChunks(tinyPng());
  const end = chunks.findIndex((chunk) => chunk.name === 'IEND');
  const texts = [];
  if (cards.chara) texts.push(pngText.encode('chara', Buffer.from(JSON.stringify(cards.chara), 'utf8').toString('base64')));
  if (cards.ccv3) texts.push(pngText.encode('ccv3', Buffer.from(JSON.stringify(cards.ccv3), 'utf8').toString('base64')));
  chunks.splice(end, 0, ...texts);
  return Buffer.from(encodeChunks(chunks));
}

function cardsInPng(png: Uint8Array): Record<string, unknown> {
  const found: Record<string, unknown> = {};
  for (const chunk of extractChunks(png)) {
    if (chunk.name !== 'tEXt') continue;
    const { keyword, text } = pngText.decode(chunk.data);
    found[keyword] = JSON.parse(Buffer.from(text, 'base64').toString('utf8'));
  }
  return found;
}

const v2Data = {
  name: 'Seraphina',
  description: '{{char}} is a guardian of the enchanted forest.',
  personality: 'Kind, protective, wise — with a hidden temper. Ünïcödé ✓',
  scenario: '{{user}} wakes up in Seraphina\'s glade after being attacked.',
  first_mes: '*Seraphina kneels beside you.* Rest now, {{user}}.',
  mes_example:
    '<START>\n{{user}}: Who are you?\n{{char}}: I am Seraphina.\nI tend this forest.\n<START>\n{{user}}: Can I leave?\n{{char}}: When you are healed.',
  creator_notes: 'Best with a long context.',
  system_prompt: '',
  post_history_instructions: 'Stay gentle.',
  alternate_greetings: ['*She hums softly.*', 'Welcome back, {{user}}.'],
  character_book: {
    name: 'Forest lore',
    scan_depth: 3,
    token_budget: 500,
    recursive_scanning: false,
    extensions: { world_info_version: 2 },
    entries: [
      {
        keys: ['glade', 'forest'],
        content: 'The glade is protected by ancient wards.',
        extensions: { depth: 4, weight: 10 },
        enabled: true,
        insertion_order: 100,
        case_sensitive: false,
        name: 'Glade',
        priority: 10,
        id: 1,
        comment: 'wards',
        selective: true,
        secondary_keys: ['ward'],
        constant: false,
        position: 'before_char',
      },
    ],
  },
  tags: ['fantasy', 'healer'],
  creator: 'someone',
  character_version: '1.2',
  extensions: {
    talkativeness: '0.5',
    fav: false,
    world: 'Forest lore',
    depth_prompt: { prompt: 'Be kind.', depth: 4, role: 'system' },
    some_other_tool: { nested: [1, 2, { deep: true }] },
  },
  some_unknown_field: { kept: 'yes' },
};

/** SillyTavern writes the V1 fields again at the top level of every V2/V3 card it exports. */
const v1Copies = (data: typeof v2Data) => ({
  name: data.name,
  description: data.description,
  personality: data.personality,
  scenario: data.scenario,
  first_mes: data.first_mes,
  mes_example: data.mes_example,
});
const v2Card = { spec: 'chara_card_v2', spec_version: '2.0', data: v2Data };
/** A card as SillyTavern exports its bundled Seraphina: V1 copies and SillyTavern's own extras beside spec and data. */
const sillyTavernExtras = {
  avatar: 'none',
  chat: 'Seraphina - 2023-5-11 @20h 34m 46s 413ms',
  create_date: '2023-5-11 @20h 34m 46s 413ms',
  talkativeness: '0.5',
  creatorcomment: 'Seraphina is a guardian of the forest.',
  fav: false,
  tags: ['fantasy', 'healer'],
};
const sillyTavernCard = { ...v1Copies(v2Data), ...sillyTavernExtras, spec: 'chara_card_v2', spec_version: '2.0', data: v2Data };
const v3Extras = {
  nickname: 'Sera',
  group_only_greetings: ['Hello, everyone.'],
  assets: [{ type: 'icon', uri: 'ccdefault:', name: 'main', ext: 'png' }],
  creator_notes_multilingual: { fr: 'Meilleur avec un long contexte.' },
  source: ['https://example.com/seraphina'],
  creation_date: 1700000000,
  modification_date: 1700000500,
};
const v3Card = { spec: 'chara_card_v3', spec_version: '3.0', data: { ...v2Data, ...v3Extras } };

async function postPng(server: TestServer, png: Buffer, query = ''): Promise<Pick<TestResponse, 'status' | 'body'>> {
  const response = await fetch(`${server.url}/v1/characters/import${query}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'image/png' },
    body: new Uint8Array(png),
  });
  return { status: response.status, body: await response.json() };
}

describe.each(backends())('Character Card import and export on %s storage', (backend) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(backend, { IMPORT_BODY_LIMIT_BYTES: '100000' });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('imports a SillyTavern V2 PNG and exports the same card as ccv2, ccv3 and png', async () => {
    const imported = await postPng(server, sillyTavernPng({ chara: v2Card }), '?slug=seraphina-v2');
    expect(imported.status).toBe(201);
    expect(imported.body).toMatchObject({
      imported_from: 'ccv2',
      slug: 'seraphina-v2',
      name: 'Seraphina',
      personality: v2Data.personality,
      greeting: v2Data.first_mes,
      system_prompt: null,
      post_history_instructions: 'Stay gentle.',
      alternate_greetings: v2Data.alternate_greetings,
      character_book: v2Data.character_book,
      example_dialogues: [
        { user: 'Who are you?', assistant: 'I am Seraphina.\nI tend this forest.' },
        { user: 'Can I leave?', assistant: 'When you are healed.' },
      ],
      avatar: `/v1/characters/${imported.body.id}/avatar`,
    });
    expect(imported.body.system_prompt_preview).toContain('Personality: Kind, protective');

    const v2 = await server.request('GET', '/v1/characters/seraphina-v2/export?format=ccv2');
    expect(v2.status).toBe(200);
    expect(v2.headers.get('content-disposition')).toContain('seraphina-v2.json');
    expect(v2.body).toEqual({ ...v1Copies(v2Data), ...v2Card });

    const v3 = await server.request('GET', '/v1/characters/seraphina-v2/export?format=ccv3');
    expect(v3.body).toEqual({ ...v1Copies(v2Data), spec: 'chara_card_v3', spec_version: '3.0', data: { ...v2Data, group_only_greetings: [] } });

    const pngResponse = await fetch(`${server.url}/v1/characters/seraphina-v2/export?format=png`, { headers: { authorization: `Bearer ${server.adminKey}` } });
    expect(pngResponse.headers.get('content-type')).toBe('image/png');
    const png = new Uint8Array(await pngResponse.arrayBuffer());
    const embedded = cardsInPng(png);
    expect(embedded.chara).toEqual(v2.body);
    expect(embedded.ccv3).toEqual(v3.body);
    // The stored avatar is the image that came in: same pixels.
    const idat = (bytes: Uint8Array) => Buffer.from(extractChunks(bytes).find((chunk) => chunk.name === 'IDAT')!.data).toString('hex');
    expect(idat(png)).toBe(idat(tinyPng()));

    const avatar = await fetch(`${server.url}/v1/characters/seraphina-v2/avatar`, { headers: { authorization: `Bearer ${server.adminKey}` } });
    expect(avatar.headers.get('content-type')).toBe('image/png');
    expect(Object.keys(cardsInPng(new Uint8Array(await avatar.arrayBuffer())))).toEqual([]);
  });

  it('prefers the ccv3 chunk and keeps the V3 fields through a round trip', async () => {
    const imported = await postPng(server, sillyTavernPng({ chara: v2Card, ccv3: v3Card }), '?slug=seraphina-v3');
    expect(imported.status).toBe(201);
    expect(imported.body.imported_from).toBe('ccv3');
    expect(imported.body.card).toMatchObject({ nickname: 'Sera', group_only_greetings: ['Hello, everyone.'] });

    const v3 = await server.request('GET', '/v1/characters/seraphina-v3/export?format=ccv3');
    expect(v3.body).toEqual({ ...v1Copies(v2Data), ...v3Card });
    // V2 has no place for the V3 additions; everything else is there.
    const v2 = await server.request('GET', '/v1/characters/seraphina-v3/export?format=ccv2');
    expect(v2.body).toEqual({ ...v1Copies(v2Data), ...v2Card });
  });

  it('keeps a SillyTavern card\'s top level (V1 copies and its own extras) through a round trip, as JSON and as PNG', async () => {
    const json = await server.request('POST', '/v1/characters/import?slug=st-seraphina', { body: sillyTavernCard });
    expect(json.status).toBe(201);
    const exported = await server.request('GET', '/v1/characters/st-seraphina/export?format=ccv2');
    expect(exported.body).toEqual(sillyTavernCard);
    // The V1 copies follow the character, not the stale import.
    await server.request('PATCH', '/v1/characters/st-seraphina', { body: { description: 'A renamed guardian.' } });
    const changed = await server.request('GET', '/v1/characters/st-seraphina/export?format=ccv3');
    expect(changed.body).toMatchObject({ ...sillyTavernExtras, description: 'A renamed guardian.', name: 'Seraphina', spec: 'chara_card_v3' });
    expect(changed.body.data.description).toBe('A renamed guardian.');

    const png = await postPng(server, sillyTavernPng({ chara: sillyTavernCard }), '?slug=st-seraphina-png');
    expect(png.status).toBe(201);
    const pngExport = await fetch(`${server.url}/v1/characters/st-seraphina-png/export?format=png`, { headers: { authorization: `Bearer ${server.adminKey}` } });
    expect(cardsInPng(new Uint8Array(await pngExport.arrayBuffer())).chara).toEqual(sillyTavernCard);
  });

  it('imports card JSON (V2, V3, V1) and refuses what is not a card with a 422 naming the field', async () => {
    const json = await server.request('POST', '/v1/characters/import', { body: v3Card });
    expect(json.status).toBe(201);
    expect(json.body).toMatchObject({ imported_from: 'ccv3', slug: 'seraphina' });
    const v1 = await server.request('POST', '/v1/characters/import', { body: { name: 'Old Card', first_mes: 'Hi', personality: 'old' } });
    expect(v1.body).toMatchObject({ imported_from: 'ccv1', greeting: 'Hi', personality: 'old' });

    const unknownSpec = await server.request('POST', '/v1/characters/import', { body: { spec: 'something_else', data: {} } });
    expect(unknownSpec.status).toBe(422);
    expect(unknownSpec.body.field).toBe('spec');
    const nameless = await server.request('POST', '/v1/characters/import', { body: { spec: 'chara_card_v2', spec_version: '2.0', data: { description: 'x' } } });
    expect(nameless.status).toBe(422);
    expect(nameless.body.field).toBe('data.name');
    const badBook = await server.request('POST', '/v1/characters/import', {
      body: { spec: 'chara_card_v2', spec_version: '2.0', data: { name: 'B', character_book: { entries: [{ keys: 'x', content: 'y' }] } } },
    });
    expect(badBook.status).toBe(422);
    expect(badBook.body.field).toBe('data.character_book.entries.0.keys');

    const noCard = await postPng(server, Buffer.from(tinyPng()));
    expect(noCard.status).toBe(422);
    expect(noCard.body.detail).toContain('no character card');
    const notPng = await postPng(server, Buffer.from('definitely not a png'));
    expect(notPng.status).toBe(422);
    const badBase64 = await postPng(server, Buffer.from(encodeChunks([...extractChunks(tinyPng()).slice(0, 2), pngText.encode('chara', '!!!'), { name: 'IEND', data: new Uint8Array(0) }])));
    expect(badBase64.status).toBe(422);
  });

  it('takes large PNGs only on the import route, up to the import limit', async () => {
    const tooLarge = await postPng(server, Buffer.concat([sillyTavernPng({ chara: v2Card }), Buffer.alloc(150_000)]));
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body.code).toBe('payload_too_large');
    const elsewhere = await fetch(`${server.url}/v1/characters`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'image/png' },
      body: new Uint8Array(sillyTavernPng({ chara: v2Card })),
    });
    expect(elsewhere.status).toBe(415);
  });

  it('carries Anima fields through its own export and import (extensions.anima)', async () => {
    const created = await server.request('POST', '/v1/characters', {
      body: {
        name: 'Round Trip',
        personality_traits: { bold: 0.8 },
        interaction_style: 'sarcastic',
        knowledge_domains: ['history'],
        backstory: 'Was a pirate.',
        voice_id: 'voice-1',
        model_settings: { provider: 'xai', temperature: 0.2 },
        example_dialogues: [{ user: 'Hi', assistant: 'Oh, joy.' }],
      },
    });
    const exported = await server.request('GET', `/v1/characters/${created.body.id}/export?format=ccv2`);
    expect(exported.body.data.mes_example).toBe('<START>\n{{user}}: Hi\n{{char}}: Oh, joy.');
    expect(exported.body.data.extensions.anima).toMatchObject({ interaction_style: 'sarcastic', personality_traits: { bold: 0.8 } });
    const reimported = await server.request('POST', '/v1/characters/import?visibility=private', { body: exported.body });
    expect(reimported.status).toBe(201);
    expect(reimported.body).toMatchObject({
      slug: 'round-trip-2',
      visibility: 'private',
      personality_traits: { bold: 0.8 },
      interaction_style: 'sarcastic',
      knowledge_domains: ['history'],
      backstory: 'Was a pirate.',
      voice_id: 'voice-1',
      model_settings: { provider: 'xai', temperature: 0.2 },
      example_dialogues: [{ user: 'Hi', assistant: 'Oh, joy.' }],
    });
    expect(reimported.body.card.extensions).toEqual({});

    // Without a stored image, the PNG export is a generated placeholder that still carries both cards.
    const png = await fetch(`${server.url}/v1/characters/${created.body.id}/export?format=png`, { headers: { authorization: `Bearer ${server.adminKey}` } });
    const embedded = cardsInPng(new Uint8Array(await png.arrayBuffer()));
    expect(Object.keys(embedded).sort()).toEqual(['ccv3', 'chara']);
    expect((embedded.chara as { data: { name: string } }).data.name).toBe('Round Trip');
  });
});
