import { describe, expect, it } from 'vitest';
import { identify, isMatchable, MAX_DATA_ID_BYTES, normalizeStatus } from '../../lib/callback/identify';
import { parseBody } from '../../lib/callback/parse';

describe('identify: tolerant identifiers', () => {
  it('reads the API capitalisation at the top level', () => {
    expect(identify({ TaskID: 't1', ImageID: 'img-1', Status: 'Success' })).toEqual({
      taskId: 't1',
      dataId: 'img-1',
      kind: 'image',
      status: 'completed',
      rawStatus: 'Success',
    });
  });

  it.each([
    [{ TaskId: 't', VideoId: 'v' }, 't', 'v', 'video'],
    [{ taskId: 't', videoId: 'v' }, 't', 'v', 'video'],
    [{ task_id: 't', video_id: 'v' }, 't', 'v', 'video'],
    [{ taskID: 't', image_id: 'i' }, 't', 'i', 'image'],
    [{ TASK_ID: 't', ImageId: 'i' }, 't', 'i', 'image'],
    [{ TaskID: 't', DataID: 'd' }, 't', 'd', undefined],
    [{ task_id: 't', data_id: 'd' }, 't', 'd', undefined],
    [{ TaskID: 't', DataId: 'd' }, 't', 'd', undefined],
  ])('spelling %j', (body, taskId, dataId, kind) => {
    const id = identify(body);
    expect(id?.taskId).toBe(taskId);
    expect(id?.dataId).toBe(dataId);
    expect(id?.kind).toBe(kind);
  });

  it('looks one level down, preferring Result/Data containers', () => {
    const id = identify({
      Code: 0,
      Other: { ImageID: 'wrong' },
      Result: { TaskID: 't', ImageID: 'img', Status: 'running' },
    });
    expect(id).toMatchObject({ taskId: 't', dataId: 'img', kind: 'image', status: 'progress', rawStatus: 'running' });
  });

  it('mixes levels: task at the top, data id under data', () => {
    expect(identify({ TaskID: 't', data: { video_id: 'v', state: 'failed' } })).toMatchObject({
      taskId: 't',
      dataId: 'v',
      kind: 'video',
      status: 'failed',
    });
  });

  it('does not look two levels down', () => {
    expect(identify({ Result: { Inner: { ImageID: 'deep' } } })?.dataId).toBeUndefined();
  });

  it('parses a nested field holding a JSON string', () => {
    expect(identify({ TaskID: 't', Result: JSON.stringify({ ImageID: 'i', Status: 'done' }) })).toMatchObject({
      dataId: 'i',
      status: 'completed',
    });
  });

  it('prefers ImageID/VideoID over DataID at the same level', () => {
    expect(identify({ DataID: 'd', ImageID: 'i' })).toMatchObject({ dataId: 'i', kind: 'image' });
  });

  it('accepts numeric ids and ignores empty ones', () => {
    expect(identify({ TaskID: 42, ImageID: '  ', Data: { ImageID: 7 } })).toMatchObject({ taskId: '42', dataId: '7' });
  });

  it('returns undefined for non-objects and no data id for bodies without one', () => {
    expect(identify('text')).toBeUndefined();
    expect(identify([1, 2])).toBeUndefined();
    const id = identify({ hello: 'world' });
    expect(id).toEqual({ status: 'completed' });
    expect(isMatchable(id)).toBe(false);
    expect(isMatchable(identify({ ImageID: 'x' }))).toBe(true);
  });

  it('survives extremely deep single-element arrays (no stack overflow) and still unwraps shallow ones', () => {
    const depth = 200_000;
    const deep = parseBody(Buffer.from(`${'['.repeat(depth)}{"ImageID":"x"}${']'.repeat(depth)}`), 'application/json');
    expect(deep.format).toBe('json');
    expect(() => identify(deep.value)).not.toThrow();
    expect(identify(deep.value)).toBeUndefined();
    expect(identify([[{ TaskID: 't', ImageID: 'i' }]])).toMatchObject({ taskId: 't', dataId: 'i' });
    expect(identify(JSON.stringify([JSON.stringify({ VideoID: 'v' })]))).toMatchObject({ dataId: 'v', kind: 'video' });
  });

  it('does not match on a data id too long to be a ledger key', () => {
    expect(isMatchable(identify({ ImageID: 'a'.repeat(MAX_DATA_ID_BYTES) }))).toBe(true);
    expect(isMatchable(identify({ ImageID: 'a'.repeat(MAX_DATA_ID_BYTES + 1) }))).toBe(false);
    // Bytes, not characters: 300 emoji are 1200 UTF-8 bytes.
    expect(isMatchable(identify({ ImageID: '💥'.repeat(300) }))).toBe(false);
  });

  it('reads identifiers from form bodies, including a JSON-valued field', () => {
    const form = parseBody(
      Buffer.from(`TaskID=t-9&Result=${encodeURIComponent(JSON.stringify({ VideoID: 'v-9', Status: 'Failed' }))}`),
      'application/x-www-form-urlencoded',
    );
    expect(form.format).toBe('form');
    expect(identify(form.value)).toMatchObject({
      taskId: 't-9',
      dataId: 'v-9',
      kind: 'video',
      status: 'failed',
      rawStatus: 'Failed',
    });
  });
});

describe('normalizeStatus', () => {
  it.each([
    ['success', 'completed'],
    ['Succeeded', 'completed'],
    ['COMPLETED', 'completed'],
    ['done', 'completed'],
    ['finished', 'completed'],
    ['ok', 'completed'],
    ['0', 'completed'],
    ['fail', 'failed'],
    ['Failed', 'failed'],
    ['error', 'failed'],
    ['timeout', 'failed'],
    ['running', 'progress'],
    ['Processing', 'progress'],
    ['pending', 'progress'],
    ['in_progress', 'progress'],
    ['IN-PROGRESS', 'progress'],
    ['something-new', 'completed'],
  ] as const)('%s → %s', (raw, expected) => {
    expect(normalizeStatus(raw)).toBe(expected);
  });

  it('treats a missing status as completed', () => {
    expect(normalizeStatus(undefined)).toBe('completed');
  });

  it('reads a numeric status 0 as completed and keeps the raw value', () => {
    expect(identify({ ImageID: 'i', Status: 0 })).toMatchObject({ status: 'completed', rawStatus: '0' });
  });
});
