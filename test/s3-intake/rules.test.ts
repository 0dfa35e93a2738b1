import { describe, expect, it } from 'vitest';
import { IMAGE_MAX_BYTES } from '../../lib/config';
import {
  decide,
  decodeS3EventKey,
  derivedSubmissionId,
  isSubmittableKey,
  kindFromExtension,
  objectIdentity,
  parseAlgoParamConf,
  resolveKind,
  resolveTaskId,
  taskIdFromKey,
} from '../../lib/s3-intake/rules';
import { decodeMetadataValue } from '../../lib/storage/metadata';
import { encodeS3EventKey } from '../../local/servers/s3rver';

const cfg = { imageMaxBytes: IMAGE_MAX_BYTES };
const b64 = (s: string) => `=?UTF-8?B?${Buffer.from(s, 'utf8').toString('base64')}?=`;

describe('decodeS3EventKey', () => {
  it.each([
    ['incoming/t1/my+photo.jpg', 'incoming/t1/my photo.jpg'],
    ['incoming/t1/a%2Bb.jpg', 'incoming/t1/a+b.jpg'],
    ['incoming/t1/100%25.png', 'incoming/t1/100%.png'],
    ['incoming/t1/%E7%8C%AB.jpg', 'incoming/t1/猫.jpg'],
    ['incoming/a/b/c/d/e.mp4', 'incoming/a/b/c/d/e.mp4'],
  ])('%s → %s', (encoded, key) => {
    expect(decodeS3EventKey(encoded)).toBe(key);
  });

  it('inverts the AWS encoding for awkward keys', () => {
    for (const key of ['incoming/x/ a+b %20 (1) ü 🎥.mov', "incoming/x/it's*!~.jpg", 'incoming/x/%%2B+.png']) {
      expect(decodeS3EventKey(encodeS3EventKey(key))).toBe(key);
    }
  });
});

describe('isSubmittableKey', () => {
  it('accepts only files under incoming/', () => {
    expect(isSubmittableKey('incoming/t/a.jpg')).toBe(true);
    expect(isSubmittableKey('incoming/a.jpg')).toBe(true);
    expect(isSubmittableKey('results/t/a.json')).toBe(false);
    expect(isSubmittableKey('Incoming/t/a.jpg')).toBe(false);
    expect(isSubmittableKey('other/incoming/a.jpg')).toBe(false);
    expect(isSubmittableKey('incoming/')).toBe(false);
    expect(isSubmittableKey('incoming/t/')).toBe(false);
  });
});

describe('decodeMetadataValue (RFC 2047)', () => {
  it('decodes B and Q encoded words in UTF-8 and latin1', () => {
    expect(decodeMetadataValue(b64('猫の写真.jpg'))).toBe('猫の写真.jpg');
    expect(decodeMetadataValue('=?utf-8?q?caf=C3=A9_au_lait?=')).toBe('café au lait');
    expect(decodeMetadataValue('=?ISO-8859-1?Q?caf=E9?=')).toBe('café');
  });
  it('joins adjacent words and keeps plain text', () => {
    expect(decodeMetadataValue(`${b64('日本')} ${b64('語')}`)).toBe('日本語');
    expect(decodeMetadataValue('plain value')).toBe('plain value');
    expect(decodeMetadataValue(`x ${b64('é')} y`)).toBe('x é y');
  });
  it('keeps a word with an unknown charset as it was', () => {
    expect(decodeMetadataValue('=?x-unknown?B?YQ==?=')).toBe('=?x-unknown?B?YQ==?=');
  });
});

describe('TaskID', () => {
  it('metadata, then path segment, then default', () => {
    expect(resolveTaskId({ key: 'incoming/path-task/a.jpg', metadata: { 'iva-task-id': 'meta-task' } })).toBe(
      'meta-task',
    );
    expect(resolveTaskId({ key: 'incoming/path-task/a.jpg', metadata: {} }, 'dflt')).toBe('path-task');
    expect(resolveTaskId({ key: 'incoming/a.jpg', metadata: {} }, 'dflt')).toBe('dflt');
    expect(resolveTaskId({ key: 'incoming/a.jpg', metadata: {} })).toBeUndefined();
    expect(resolveTaskId({ key: 'incoming/a.jpg', metadata: { 'iva-task-id': '  ' } }, ' ')).toBeUndefined();
  });
  it('takes the first segment of deep paths only, never an empty one', () => {
    expect(taskIdFromKey('incoming/T 1/x/y/z.mp4')).toBe('T 1');
    expect(taskIdFromKey('incoming//z.mp4')).toBeUndefined();
    expect(taskIdFromKey('incoming/z.mp4')).toBeUndefined();
  });
});

describe('kind', () => {
  it('metadata, then Content-Type, then extension', () => {
    expect(resolveKind({ key: 'incoming/t/a.jpg', metadata: { 'iva-kind': 'Video' }, contentType: 'image/jpeg' })).toBe(
      'video',
    );
    expect(resolveKind({ key: 'incoming/t/a.jpg', metadata: {}, contentType: 'video/mp4' })).toBe('video');
    expect(resolveKind({ key: 'incoming/t/a.MOV', metadata: {}, contentType: 'application/octet-stream' })).toBe(
      'video',
    );
    expect(resolveKind({ key: 'incoming/t/a.webp', metadata: {}, contentType: 'image/webp; q=1' })).toBe('image');
  });
  it('knows common extensions', () => {
    for (const ext of ['jpg', 'jpeg', 'png', 'gif', 'bmp', 'webp', 'tiff', 'heic'])
      expect(kindFromExtension(`a.${ext}`)).toBe('image');
    for (const ext of ['mp4', 'mov', 'avi', 'mkv', 'flv', 'webm', 'mpg', 'ts', '3gp'])
      expect(kindFromExtension(`a.${ext}`)).toBe('video');
    expect(kindFromExtension('README')).toBeUndefined();
  });
  it('refuses unknown media and a bad iva-kind', () => {
    expect(() => resolveKind({ key: 'incoming/t/a.pdf', metadata: {}, contentType: 'application/pdf' })).toThrow(
      /Cannot tell image from video/,
    );
    expect(() => resolveKind({ key: 'incoming/t/a.jpg', metadata: { 'iva-kind': 'audio' } })).toThrow(
      /image" or "video/,
    );
  });
});

describe('AlgoParamConf', () => {
  it('parses a JSON object and refuses anything else', () => {
    expect(parseAlgoParamConf('{"threshold":0.5}')).toEqual({ threshold: 0.5 });
    expect(parseAlgoParamConf(undefined)).toBeUndefined();
    for (const bad of ['[1]', '"x"', 'null', '{nope', '3']) {
      expect(() => parseAlgoParamConf(bad)).toThrow(expect.objectContaining({ code: 'InvalidAlgoParamConf' }));
    }
  });
});

describe('decide', () => {
  it('builds the plan with metadata overrides (encoded unicode included)', () => {
    const d = decide(
      {
        key: 'incoming/path-task/x.bin',
        metadata: {
          'iva-task-id': 'T9',
          'iva-kind': 'image',
          'iva-name': b64('猫.jpg'),
          'iva-desc': b64('描述'),
          'iva-algo-param-conf': b64('{"a":"é"}'),
        },
        contentType: 'application/octet-stream',
        size: 10,
      },
      cfg,
    );
    expect(d).toEqual({
      ok: true,
      plan: { taskId: 'T9', kind: 'image', name: '猫.jpg', desc: '描述', algoParamConf: { a: 'é' } },
    });
  });
  it('defaults Name to the file name', () => {
    const d = decide({ key: 'incoming/t/deep/my photo+1.png', metadata: {}, contentType: 'image/png', size: 1 }, cfg);
    expect(d).toMatchObject({ ok: true, plan: { taskId: 't', kind: 'image', name: 'my photo+1.png' } });
  });
  it.each([
    [{ key: 'incoming/a.jpg', metadata: {} }, 'MissingTaskId'],
    [{ key: 'incoming/t/a.txt', metadata: {}, contentType: 'text/plain' }, 'UnsupportedMediaType'],
    [{ key: 'incoming/t/a.jpg', metadata: { 'iva-algo-param-conf': '{' } }, 'InvalidAlgoParamConf'],
    [{ key: 'incoming/t/a.jpg', metadata: {}, size: IMAGE_MAX_BYTES + 1 }, 'ImageTooLarge'],
  ])('fails with a stable code %#', (facts, code) => {
    const d = decide(facts, cfg);
    expect(d.ok).toBe(false);
    if (!d.ok) {
      expect(d.error.code).toBe(code);
      expect(d.error.message.length).toBeGreaterThan(20);
      expect(d.partial.name).toBeDefined();
    }
  });
  it('lets a video exceed the image limit, and an image of exactly 50 MB pass', () => {
    expect(decide({ key: 'incoming/t/a.mp4', metadata: {}, size: IMAGE_MAX_BYTES * 3 }, cfg).ok).toBe(true);
    expect(decide({ key: 'incoming/t/a.jpg', metadata: {}, size: IMAGE_MAX_BYTES }, cfg).ok).toBe(true);
  });
});

describe('submission ids', () => {
  it('are deterministic per upload and differ between uploads', () => {
    const a = derivedSubmissionId('b', 'incoming/t/a.jpg', 'v1');
    expect(a).toMatch(/^s3_[A-Za-z0-9_-]{32}$/);
    expect(derivedSubmissionId('b', 'incoming/t/a.jpg', 'v1')).toBe(a);
    expect(derivedSubmissionId('b', 'incoming/t/a.jpg', 'v2')).not.toBe(a);
    expect(derivedSubmissionId('b2', 'incoming/t/a.jpg', 'v1')).not.toBe(a);
  });
  it('use versionId, then sequencer, then the unquoted ETag', () => {
    expect(objectIdentity({ versionId: 'v', sequencer: 's', eTag: '"e"' })).toBe('v');
    expect(objectIdentity({ sequencer: 's', eTag: '"e"' })).toBe('s');
    expect(objectIdentity({ eTag: '"e"' })).toBe('e');
    expect(objectIdentity({})).toBeUndefined();
  });
});
