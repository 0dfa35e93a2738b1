import { describe, expect, it } from 'vitest';
import { MalformedMessageError } from '../../lib/s3-intake/errors';
import { parseMessageBody } from '../../lib/s3-intake/events';

const rec = (key: string, eventName = 'ObjectCreated:Put', object: Record<string, unknown> = {}) => ({
  eventSource: 'aws:s3',
  eventName,
  eventTime: '2026-11-30T12:00:00.000Z',
  s3: { bucket: { name: 'bkt' }, object: { key, size: 3, eTag: 'abc', sequencer: '00A1', ...object } },
});

describe('parseMessageBody', () => {
  it('reads every record of a notification and decodes keys', () => {
    const parsed = parseMessageBody(
      JSON.stringify({
        Records: [
          rec('incoming/t/a+b.jpg'),
          rec('incoming/t/%E7%8C%AB%2B.png', 'ObjectCreated:CompleteMultipartUpload', { versionId: 'v9' }),
        ],
      }),
    );
    expect(parsed.type).toBe('records');
    if (parsed.type !== 'records') return;
    expect(parsed.records.map((r) => r.key)).toEqual(['incoming/t/a b.jpg', 'incoming/t/猫+.png']);
    expect(parsed.records[1]).toMatchObject({
      bucket: 'bkt',
      versionId: 'v9',
      sequencer: '00A1',
      eTag: 'abc',
      size: 3,
    });
  });
  it('skips non-ObjectCreated records and a "null" versionId', () => {
    const parsed = parseMessageBody(
      JSON.stringify({
        Records: [
          rec('incoming/t/x.jpg', 'ObjectRemoved:Delete'),
          rec('incoming/t/y.jpg', 'ObjectCreated:Put', { versionId: 'null' }),
        ],
      }),
    );
    if (parsed.type !== 'records') throw new Error('expected records');
    expect(parsed.ignored).toEqual([{ eventName: 'ObjectRemoved:Delete', key: 'incoming/t/x.jpg' }]);
    expect(parsed.records[0]!.versionId).toBeUndefined();
  });
  it('does not fail a message over the key encoding of a record it ignores anyway', () => {
    const parsed = parseMessageBody(
      JSON.stringify({ Records: [rec('incoming/t/100%.jpg', 'ObjectRemoved:Delete'), rec('incoming/t/ok.jpg')] }),
    );
    if (parsed.type !== 'records') throw new Error('expected records');
    expect(parsed.records.map((r) => r.key)).toEqual(['incoming/t/ok.jpg']);
    expect(parsed.ignored).toEqual([{ eventName: 'ObjectRemoved:Delete', key: 'incoming/t/100%.jpg' }]);
    expect(() => parseMessageBody(JSON.stringify({ Records: [rec('incoming/t/100%.jpg')] }))).toThrow(
      /not valid URL encoding/,
    );
  });

  it('recognises the test event and SNS envelopes', () => {
    expect(parseMessageBody(JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Bucket: 'bkt' }))).toEqual({
      type: 'test',
    });
    const wrapped = parseMessageBody(
      JSON.stringify({ Type: 'Notification', Message: JSON.stringify({ Records: [rec('incoming/t/z.mp4')] }) }),
    );
    expect(wrapped.type === 'records' && wrapped.records[0]!.key).toBe('incoming/t/z.mp4');
  });
  it.each([
    'not json',
    '[]',
    '{"foo":1}',
    '{"Records":[{"s3":{}}]}',
    '{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"%E0%A4%A"}}}]}',
  ])('throws MalformedMessageError for %s', (body) => {
    expect(() => parseMessageBody(body)).toThrow(MalformedMessageError);
  });
});
