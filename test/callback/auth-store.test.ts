import { describe, expect, it } from 'vitest';
import { redactPath, secretMatches } from '../../lib/callback/auth';
import { keySegment, placeResult, resultKey } from '../../lib/callback/store';

describe('secretMatches', () => {
  const accepted = ['s3cret-current-0123456789', 'old-previous-secret'];

  it('accepts each accepted secret', () => {
    expect(secretMatches('s3cret-current-0123456789', accepted)).toBe(true);
    expect(secretMatches('old-previous-secret', accepted)).toBe(true);
  });

  it.each([undefined, null, '', 's3cret-current-012345678', 's3cret-current-01234567890', 'S3CRET-CURRENT-0123456789'])(
    'refuses %j',
    (candidate) => {
      expect(secretMatches(candidate, accepted)).toBe(false);
    },
  );

  it('refuses everything when no secret is configured, even an empty one', () => {
    expect(secretMatches('', [''])).toBe(false);
    expect(secretMatches('x', [])).toBe(false);
  });
});

describe('redactPath', () => {
  it('hides the secret segment', () => {
    expect(redactPath('/prod/callbacks/abcDEF123?x=1')).toBe('/prod/callbacks/***?x=1');
    expect(redactPath(undefined)).toBe('/callbacks/{secret}');
  });
});

describe('result keys', () => {
  const sha = 'a'.repeat(64);

  it('files by task and data id', () => {
    expect(resultKey(sha, 'json', { taskId: 'task-1', dataId: 'img.1' })).toBe(`results/task-1/img.1/${sha}.json`);
  });

  it('files bodies without a data id as unmatched, and without a task id under _unknown-task', () => {
    expect(resultKey(sha, 'txt', { taskId: 't' })).toBe(`results/_unmatched/${sha}.txt`);
    expect(resultKey(sha, 'json', { dataId: 'd' })).toBe(`results/_unknown-task/d/${sha}.json`);
  });

  it('cannot be steered out of its folder or into the reserved ones', () => {
    expect(keySegment('../../etc')).toBe('..%2F..%2Fetc');
    expect(keySegment('..')).toBe('%2E.');
    expect(keySegment('_unmatched')).toBe('%5Funmatched');
    expect(keySegment('a b/ü')).toBe('a%20b%2F%C3%BC');
    // Never truncated (two long ids would share a folder): a key over 1024 bytes is unmatched.
    expect(keySegment('x'.repeat(500))).toHaveLength(500);
    expect(placeResult(sha, 'json', { taskId: 'x'.repeat(500), dataId: 'y'.repeat(500) })).toEqual({
      key: `results/_unmatched/${sha}.json`,
      unmatched: 'key-too-long',
    });
    expect(placeResult(sha, 'json', { taskId: 'x'.repeat(400), dataId: 'y'.repeat(400) }).unmatched).toBeUndefined();
    expect(keySegment('img-\ud800')).toBe('img-%ED%A0%80');
    expect(resultKey(sha, 'json', { taskId: '_emitted', dataId: 'd' }).startsWith('results/%5Femitted/')).toBe(true);
  });
});
