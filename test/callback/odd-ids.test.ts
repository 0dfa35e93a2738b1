/**
 * Ids IVA can echo back that JSON allows and UTF-8 does not (lone surrogates), and
 * control characters: no id fails a callback, every id is kept under a reversible key,
 * and the ledger and the event stay well-formed text.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../lib/signer/index';
import { decodeKeySegment, isWellFormed } from '../../lib/storage/wtf8';
import { allStrings, type Servers, startServers, world } from './world';

let servers: Servers;
beforeAll(async () => {
  servers = await startServers();
});
afterAll(async () => {
  await servers?.close();
});

const ODD = [
  'img-\ud800',
  '\udfff',
  'a\udc00\ud800b',
  'ctl-\u0000\u0001\u001f\u007f',
  'nl\n\r\t',
  '%ED%A0%80',
  '_emitted',
  '..',
  '../x',
];
const FIELDS = ['ImageID', 'VideoID', 'DataID'] as const;

describe('odd ids never fail a callback', () => {
  for (const id of ODD) {
    for (const field of FIELDS) {
      it(`${field} ${JSON.stringify(id)} (and the same TaskID) is stored under a key that decodes back to it`, async () => {
        const w = await world(servers);
        const body = JSON.stringify({ TaskID: id, [field]: id, Status: 'Success' });
        const out = await w.call({ body });
        expect(out.status).toBe(200);
        const key = `results/${String(out.body.stored).split('/results/')[1]}`;
        const [, task, data, file] = key.split('/');
        expect(decodeKeySegment(task!)).toBe(id);
        expect(decodeKeySegment(data!)).toBe(id);
        expect(file).toBe(`${sha256Hex(body)}.json`);
        expect((await w.read(key)).equals(Buffer.from(body, 'utf8'))).toBe(true);
        expect(w.events.events).toHaveLength(1);
        expect(allStrings(await w.items()).every(isWellFormed)).toBe(true);
      });
    }
  }

  it('matches a callback to a submission whose data id holds a lone surrogate, either order', async () => {
    const w = await world(servers);
    const ids = ['v-\ud800-late', 'v-\udbff-early'];
    await w.ledger.begin({ id: 'late', source: 'api', taskId: 't', kind: 'video' });
    await w.ledger.markSubmitted('late', { dataId: ids[0]!, requestId: 'r', kind: 'video' });
    expect((await w.call({ body: JSON.stringify({ TaskID: 't', VideoID: ids[0], Status: 'done' }) })).status).toBe(200);
    await w.ledger.begin({ id: 'early', source: 'api', taskId: 't', kind: 'video' });
    expect((await w.call({ body: JSON.stringify({ TaskID: 't', VideoID: ids[1], Status: 'done' }) })).status).toBe(200);
    await w.ledger.markSubmitted('early', { dataId: ids[1]!, requestId: 'r', kind: 'video' });
    expect((await w.ledger.get('late'))?.status).toBe('completed');
    expect((await w.ledger.get('early'))?.status).toBe('completed');
    expect((await w.ledger.getByDataId(ids[0]!))?.id).toBe('late');
    // Two ids that differ only in their lone surrogate are two different ledger keys.
    expect(await w.ledger.getByDataId('v-\udbfe-early')).toBeUndefined();
    expect(w.events.events[0]?.submissionId).toBe('late');
    expect(allStrings(await w.items()).every(isWellFormed)).toBe(true);
  });

  it('keeps ids too long for an S3 key under _unmatched with the reason, answering 200', async () => {
    const w = await world(servers);
    const body = JSON.stringify({ TaskID: '\u0001'.repeat(400), ImageID: 'i', Status: 'success' });
    const out = await w.call({ body });
    expect(out.status).toBe(200);
    expect(out.body.stored).toBe(`s3://${w.bucket}/results/_unmatched/${sha256Hex(body)}.json`);
    expect(out.body.unmatched).toBe('key-too-long');
  });
});
