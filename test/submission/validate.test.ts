/**
 * The one set of field rules (lib/submission/validate.ts) and its three users: the API's
 * Request object, the S3 path's object metadata, and the CLI. The same value must get the
 * same verdict and the same code everywhere.
 */
import { describe, expect, it } from 'vitest';
import { validateRequestObject } from '../../lib/api/validate';
import { validateUploadRequest } from '../../lib/api/uploads';
import { runCli } from '../../lib/cli/submit';
import { IMAGE_MAX_BYTES } from '../../lib/config';
import { decide } from '../../lib/s3-intake/rules';
import {
  ALGO_PARAM_CONF_MAX_DEPTH,
  checkAlgoParamConf,
  checkKind,
  checkName,
  checkTaskId,
  escapeForLog,
  NAME_MAX_CHARS,
  TASK_ID_MAX_CHARS,
  SubmissionFieldError,
} from '../../lib/submission/validate';

const b64 = (s: string) => `=?UTF-8?B?${Buffer.from(s, 'utf8').toString('base64')}?=`;
/** The JSON text of `depth` nested objects, built as text (JSON.stringify itself overflows on it). */
const deepJson = (depth: number): string => `${'{"a":'.repeat(depth - 1)}{"leaf":1}${'}'.repeat(depth - 1)}`;
const nested = (depth: number): Record<string, unknown> => {
  let value: Record<string, unknown> = { leaf: 1 };
  for (let i = 1; i < depth; i++) value = { a: value };
  return value;
};

/** TaskIDs the API refuses with InvalidTaskID: control characters anywhere, or too long. */
const BAD_TASK_IDS: Array<[string, string]> = [
  ['CR LF inside', 'task\r\nX-Injected: 1'],
  ['NUL inside', 'ta\u0000sk'],
  ['a tab', 'ta\tsk'],
  ['DEL', 'task\u007f'],
  ['C1 control (NEL)', 'task\u0085x'],
  ['thousands of characters', 'x'.repeat(5_000)],
  ['one over the limit', 'y'.repeat(TASK_ID_MAX_CHARS + 1)],
];

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

describe('the field rules', () => {
  it('TaskID: refuses control characters and over-long values, accepts the limit exactly', () => {
    for (const [label, value] of BAD_TASK_IDS)
      expect(
        codeOf(() => checkTaskId(value)),
        label,
      ).toBe('InvalidTaskID');
    expect(checkTaskId('t'.repeat(TASK_ID_MAX_CHARS))).toBe('t'.repeat(TASK_ID_MAX_CHARS));
    expect(checkTaskId('任务 1')).toBe('任务 1');
    expect(codeOf(() => checkTaskId(''))).toBe('MissingTaskID');
    expect(codeOf(() => checkTaskId('   '))).toBe('MissingTaskID');
    expect(codeOf(() => checkTaskId(7))).toBe('InvalidTaskID');
  });

  it('Name: refuses control characters and more than the limit', () => {
    expect(codeOf(() => checkName('a\nb.jpg'))).toBe('InvalidName');
    expect(codeOf(() => checkName('n'.repeat(NAME_MAX_CHARS + 1)))).toBe('InvalidName');
    expect(checkName('n'.repeat(NAME_MAX_CHARS))).toHaveLength(NAME_MAX_CHARS);
    expect(codeOf(() => checkName(''))).toBe('MissingName');
  });

  it('kind: image or video, case-insensitive; anything else InvalidKind', () => {
    expect(checkKind('Image')).toBe('image');
    expect(checkKind('video')).toBe('video');
    for (const bad of ['audio', '', 3, null]) expect(codeOf(() => checkKind(bad))).toBe('InvalidKind');
  });

  it('AlgoParamConf: a JSON object nested at most the limit, refused deeper (before it can overflow a stack)', () => {
    expect(checkAlgoParamConf(nested(ALGO_PARAM_CONF_MAX_DEPTH))).toEqual(nested(ALGO_PARAM_CONF_MAX_DEPTH));
    expect(codeOf(() => checkAlgoParamConf(nested(ALGO_PARAM_CONF_MAX_DEPTH + 1)))).toBe('InvalidAlgoParamConf');
    expect(codeOf(() => checkAlgoParamConf(nested(20_000)))).toBe('InvalidAlgoParamConf');
    // Arrays count as levels too.
    let deepArray: unknown = 1;
    for (let i = 0; i < 5_000; i++) deepArray = [deepArray];
    expect(codeOf(() => checkAlgoParamConf({ a: deepArray }))).toBe('InvalidAlgoParamConf');
    for (const bad of [[1], 'x', 3]) expect(codeOf(() => checkAlgoParamConf(bad))).toBe('InvalidAlgoParamConf');
  });

  it('errors carry the code and a message naming the field as the caller calls it', () => {
    try {
      checkTaskId('a\nb', 'metadata iva-task-id');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(SubmissionFieldError);
      expect((error as Error).message).toContain('metadata iva-task-id');
      expect((error as Error).message).not.toContain('\n');
    }
  });

  it('escapeForLog: control characters become visible escapes, long values are cut with their length', () => {
    expect(escapeForLog('a\r\nb\u0000c\u0085')).toBe('a\\r\\nb\\u0000c\\u0085');
    const cut = escapeForLog('z'.repeat(5_000));
    expect(cut.length).toBeLessThan(400);
    expect(cut).toContain('5000');
    expect(escapeForLog('猫 ok')).toBe('猫 ok');
  });
});

describe('one verdict on every path', () => {
  it.each(BAD_TASK_IDS)(
    'TaskID with %s: API, upload route, S3 metadata (plain and RFC 2047) and S3 key all say InvalidTaskID',
    (_label, taskId) => {
      expect(
        codeOf(() => validateRequestObject({ TaskID: taskId, Image: { Name: 'a.jpg', Source: 'file' } }, 'image')),
      ).toBe('InvalidTaskID');
      expect(codeOf(() => validateUploadRequest({ TaskID: taskId, Kind: 'image', Name: 'a.jpg', Size: 1 }))).toBe(
        'InvalidTaskID',
      );
      const cfg = { imageMaxBytes: IMAGE_MAX_BYTES };
      for (const metadata of [{ 'iva-task-id': b64(taskId) }, { 'iva-task-id': taskId }]) {
        const d = decide({ key: 'incoming/ok/a.jpg', metadata, contentType: 'image/jpeg', size: 1 }, cfg);
        expect(d.ok).toBe(false);
        if (!d.ok) {
          expect(d.error.code).toBe('InvalidTaskID');
          // The failed record never carries the raw value as its TaskID.
          expect(d.partial.taskId).toBeUndefined();
        }
      }
      if (!taskId.includes('/')) {
        const fromKey = decide(
          { key: `incoming/${taskId}/a.jpg`, metadata: {}, contentType: 'image/jpeg', size: 1 },
          cfg,
        );
        expect(fromKey.ok ? 'ok' : fromKey.error.code).toBe('InvalidTaskID');
      }
    },
  );

  it('Name and AlgoParamConf from S3 metadata follow the API rules', () => {
    const cfg = { imageMaxBytes: IMAGE_MAX_BYTES };
    const name = decide({ key: 'incoming/t/a.jpg', metadata: { 'iva-name': b64('a\r\nb.jpg') }, size: 1 }, cfg);
    expect(name.ok ? 'ok' : name.error.code).toBe('InvalidName');
    const deep = decide(
      { key: 'incoming/t/a.jpg', metadata: { 'iva-algo-param-conf': deepJson(5_000) }, size: 1 },
      cfg,
    );
    expect(deep.ok ? 'ok' : deep.error.code).toBe('InvalidAlgoParamConf');
    const kind = decide({ key: 'incoming/t/a.jpg', metadata: { 'iva-kind': 'audio' }, size: 1 }, cfg);
    expect(kind.ok ? 'ok' : kind.error.code).toBe('UnsupportedMediaType');
  });

  it('the API refuses a deeply nested AlgoParamConf with InvalidAlgoParamConf', () => {
    const request = { TaskID: 't', Image: { Name: 'a.jpg', Source: 'file' }, AlgoParamConf: nested(5_000) };
    expect(codeOf(() => validateRequestObject(request, 'image'))).toBe('InvalidAlgoParamConf');
    expect(
      codeOf(() =>
        validateUploadRequest({ TaskID: 't', Kind: 'image', Name: 'a', Size: 1, AlgoParamConf: nested(5_000) }),
      ),
    ).toBe('InvalidAlgoParamConf');
  });

  it('the CLI refuses the same values before sending anything (exit 2)', async () => {
    for (const args of [
      ['--task-id', 'a\r\nb', '--image-url', 'https://example.com/a.jpg'],
      ['--task-id', 'x'.repeat(5_000), '--image-url', 'https://example.com/a.jpg'],
      ['--task-id', 't', '--name', 'a\u0000b', '--image-url', 'https://example.com/a.jpg'],
      ['--task-id', 't', '--image-url', 'https://example.com/a.jpg', '--algo-param-conf', deepJson(5_000)],
    ]) {
      let err = '';
      const code = await runCli(['submit', '--budget-ms', '300', ...args], {
        stdout: { write: () => true },
        stderr: { write: (t: string) => (err += t) },
        // Unroutable endpoint: if anything were sent, the test would see a network error, not a usage error.
        env: { VOLC_ACCESSKEY: 'AK', VOLC_SECRETKEY: 'SKSKSKSKSKSK', IVA_ENDPOINT: 'http://127.0.0.1:9' },
      });
      expect(code, args.join(' ').slice(0, 60)).toBe(2);
      expect(err.split('\n').filter(Boolean)).toHaveLength(1);
      expect(err.length).toBeLessThan(1_000);
    }
  });
});
