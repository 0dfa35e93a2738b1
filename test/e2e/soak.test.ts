/**
 * Fault soak (issue: "Submissions under faults"): a few hundred S3 uploads and direct
 * submissions through the local stack with the real functions, while the IVA sandbox
 * drops answers after accepting, answers later than the per-attempt timeout, throttles
 * in storms and fails; S3 events are delivered twice, objects are overwritten, inputs are
 * malformed. Afterwards, from what the sandbox knows it received and what the API lists:
 *   - IVA received every upload and every request at most once;
 *   - every upload and every accepted request is in exactly one visible, non-pending state;
 *   - every `uncertain` submission is really ambiguous (IVA's answer was lost or late), and
 *     no `failed` one was taken by IVA;
 *   - malformed input left no record; a client retry with the same Idempotency-Key got the
 *     same submission.
 * It once found a real double (about one run in four on an idle machine): in the local
 * stack's unversioned bucket, an overwrite between object-created's HEAD and IVA's download
 * handed IVA the newer bytes under the first upload's id, and the newer upload's own event
 * sent them again. Uploads are now pinned before IVA gets a URL (lib/s3-intake/pin.ts).
 * A doubled body is reported with the uploads, requests, records and receipts it belongs to.
 * npm test runs it alone after the other files (it starts a whole stack and times faults).
 * The faults come from a seeded generator: SOAK_SEED=n repeats a run, SOAK_VERBOSE=1 shows
 * the stack's lines. One summary line of counts is printed, as the issue asks.
 */
import { createHash, randomBytes } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3Client } from '../../lib/storage/s3-client';
import { startLocalStack, type LocalStack } from '../../local/stack/index';
import { until } from '../support/e2e';
import { signingFetch } from '../../lib/client/signing';

const VERBOSE = process.env['SOAK_VERBOSE'] === '1';
const SEED = Number(process.env['SOAK_SEED'] ?? 0x5eed) >>> 0;
/**
 * The functions' per-attempt IVA timeout here; delay faults answer well after it. 2 s: each
 * function runs in its own process, and on a loaded 2-core machine an honest answer can take
 * over a second, which would count as a lost one.
 */
const ATTEMPT_TIMEOUT_MS = 2_000;

const S3_UPLOADS = 150;
const S3_OVERWRITTEN = 10;
const S3_DUPLICATED = 20;
const S3_MALFORMED = 10;
const DIRECT = 90;
const DIRECT_MALFORMED = 10;

interface SandboxSubmission {
  taskId: string;
  name: string;
  sha256: string;
  dataId: string;
  source: 'url' | 'file';
  url?: string;
  requestId: string;
  receivedAt: string;
}
interface SandboxRequest {
  fault?: 'error' | 'delay' | 'drop';
  dropped?: boolean;
  action?: string;
}
interface View {
  SubmissionId: string;
  Status: string;
  Source: string;
  TaskID?: string;
  Name?: string;
  ImageID?: string;
  Object?: { Key: string };
  Error?: { Code: string };
  Uncertain?: { Code: string };
}

/** mulberry32: small, seeded, good enough to pick faults reproducibly. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` over `items` with at most `limit` at once. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

describe('fault soak', () => {
  let stack: LocalStack;
  let s3: S3Client;
  const lines: string[] = [];
  const random = prng(SEED);
  const run = randomBytes(3).toString('hex');
  const s3Task = `soak-s3-${run}`;
  const directTask = `soak-direct-${run}`;

  const api = (path: string, init: RequestInit = {}): Promise<Response> =>
    signingFetch({ accessKeyId: stack.clientAccessKeyId, secretAccessKey: stack.clientSecretAccessKey })(
      `${stack.apiUrl}${path.replace(/^\//, '')}`,
      init,
    );
  const sandboxGet = async <T>(what: string): Promise<T> =>
    (await (await fetch(`${stack.ivaEndpoint}/__sandbox/${what}`)).json()) as T;
  const injectFaults = async (faults: unknown[]): Promise<void> => {
    const res = await fetch(`${stack.ivaEndpoint}/__sandbox/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(faults),
    });
    expect(res.status).toBe(200);
  };
  async function list(path: string): Promise<View[]> {
    const items: View[] = [];
    let cursor: string | undefined;
    do {
      const sep = path.includes('?') ? '&' : '?';
      const res = await api(`${path}${sep}limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(res.status).toBe(200);
      const page = (await res.json()) as { Items: View[]; NextCursor?: string };
      items.push(...page.Items);
      cursor = page.NextCursor;
    } while (cursor);
    return items;
  }

  beforeAll(async () => {
    stack = await startLocalStack({
      sandbox: { callbackDelayMs: 20, callbackBackoffMs: 50 },
      sqs: { visibilityTimeoutMs: 500, maxReceiveCount: 5, maxConcurrency: 4, batchingWindowMs: 20 },
      functionEnv: { POWERTOOLS_LOG_LEVEL: VERBOSE ? 'INFO' : 'CRITICAL', IVA_TIMEOUT_MS: String(ATTEMPT_TIMEOUT_MS) },
      log: (line) => {
        lines.push(line);
        if (VERBOSE) console.log(line);
      },
    });
    s3 = createS3Client({
      endpoint: stack.s3Endpoint,
      region: stack.s3Region,
      forcePathStyle: true,
      credentials: { accessKeyId: stack.s3AccessKeyId, secretAccessKey: stack.s3SecretAccessKey },
    });
  }, 60_000);

  afterAll(async () => {
    s3?.destroy();
    await stack?.close();
  });

  it('never submits twice, leaves everything in one visible state, and calls uncertain only what is', async () => {
    // ------------------------------------------------------------ faults, while traffic runs
    let injecting = true;
    const injected = { dropAfterAccept: 0, dropBeforeAccept: 0, delay: 0, throttleStorm: 0, unavailable: 0 };
    const injector = (async () => {
      while (injecting) {
        const r = random();
        if (r < 0.25) {
          injected.dropAfterAccept++;
          await injectFaults([{ drop: true, afterAccept: true }]);
        } else if (r < 0.4) {
          injected.dropBeforeAccept++;
          await injectFaults([{ drop: true }]);
        } else if (r < 0.6) {
          injected.delay++;
          await injectFaults([{ delayMs: ATTEMPT_TIMEOUT_MS * 2.5 }]);
        } else if (r < 0.8) {
          injected.throttleStorm++;
          await injectFaults([{ count: 6, code: 'FlowLimitExceeded', httpStatus: 429 }]);
        } else {
          injected.unavailable++;
          await injectFaults([{ count: 2, code: 'ServiceUnavailable', httpStatus: 503 }]);
        }
        await sleep(120 + random() * 200);
      }
    })();

    // ------------------------------------------------------------ S3 uploads
    /** key → every body written under it, in order. */
    const uploads = new Map<string, Buffer[]>();
    const duplicated: string[] = [];
    const sent: string[] = [];
    const realSend = stack.queue.send.bind(stack.queue);
    // Duplicate delivery, as S3 and SQS may do: some notifications are sent twice.
    stack.queue.send = (body: string): string => {
      sent.push(body);
      const id = realSend(body);
      if (body.includes(s3Task) && duplicated.length < S3_DUPLICATED && random() < 0.3) {
        duplicated.push(body);
        setTimeout(() => realSend(body), random() * 400);
      }
      return id;
    };
    const put = async (key: string, bytes: Buffer, taskId: string): Promise<void> => {
      uploads.set(key, [...(uploads.get(key) ?? []), bytes]);
      await s3.send(
        new PutObjectCommand({
          Bucket: stack.bucket,
          Key: key,
          Body: bytes,
          ContentType: 'image/jpeg',
          Metadata: { 'iva-task-id': taskId },
        }),
      );
    };
    const s3Jobs = Array.from({ length: S3_UPLOADS }, (_, i) => i);
    const s3Done = pool(s3Jobs, 4, async (i) => {
      const key = `incoming/${s3Task}/u${i}.jpg`;
      if (i < S3_MALFORMED) {
        // RFC 2047 metadata decoding to a TaskID with a control character: the API's rule applies.
        const bad = `=?UTF-8?B?${Buffer.from(`bad\ntask-${i}`).toString('base64')}?=`;
        await put(key, randomBytes(1_500), bad);
        return;
      }
      await put(key, randomBytes(1_500), s3Task);
      if (i < S3_MALFORMED + S3_OVERWRITTEN) {
        await sleep(random() * 50);
        await put(key, randomBytes(1_600), s3Task);
      }
    });

    // ------------------------------------------------------------ direct submissions
    interface DirectOutcome {
      name: string;
      bytes: Buffer;
      statuses: number[];
      ids: string[];
      codes: string[];
      malformed: boolean;
    }
    const direct: DirectOutcome[] = [];
    const form = (request: string, bytes: Buffer, partName = 'ImageFile'): FormData => {
      const f = new FormData();
      f.set('Request', request);
      f.set(partName, new Blob([bytes], { type: 'image/jpeg' }), 'x.jpg');
      return f;
    };
    const malformedBodies = [
      (): FormData => form('{"TaskID":', randomBytes(10)),
      (): FormData => form(JSON.stringify({ TaskID: directTask, Image: { Source: 'file' } }), randomBytes(10), ''),
      (): FormData =>
        form(
          JSON.stringify({
            TaskID: directTask,
            Image: { Name: 'deep.jpg', Source: 'file' },
            AlgoParamConf: JSON.parse(`${'{"a":'.repeat(3000)}1${'}'.repeat(3000)}`),
          }),
          randomBytes(10),
        ),
      (): FormData =>
        form(JSON.stringify({ TaskID: `bad\u0000${directTask}`, Image: { Source: 'file' } }), randomBytes(10)),
    ];
    const directJobs = Array.from({ length: DIRECT + DIRECT_MALFORMED }, (_, i) => i);
    const directDone = pool(directJobs, 4, async (i) => {
      const malformed = i < DIRECT_MALFORMED;
      const name = `d${i}.jpg`;
      const bytes = randomBytes(1_200);
      const outcome: DirectOutcome = { name, bytes, statuses: [], ids: [], codes: [], malformed };
      direct.push(outcome);
      const key = `soak-${run}-${i}`;
      // A careful client: retries a 5xx or a lost answer with the same Idempotency-Key.
      for (let attempt = 0; attempt < 3; attempt++) {
        const body = malformed
          ? (malformedBodies[i % malformedBodies.length] as () => FormData)()
          : form(JSON.stringify({ TaskID: directTask, Image: { Name: name, Source: 'file' } }), bytes);
        let res: Response;
        try {
          res = await api('/v1/images', { method: 'POST', body, headers: { 'Idempotency-Key': key } });
        } catch {
          outcome.statuses.push(0);
          continue;
        }
        const text = await res.text();
        outcome.statuses.push(res.status);
        const parsed = JSON.parse(text) as {
          SubmissionId?: string;
          Result?: { SubmissionId?: string };
          ResponseMetadata?: { Error?: { Code?: string } };
        };
        const id = parsed.Result?.SubmissionId ?? parsed.SubmissionId;
        if (id) outcome.ids.push(id);
        outcome.codes.push(parsed.ResponseMetadata?.Error?.Code ?? '');
        if (res.status < 500 && res.status !== 409) break;
        await sleep(200);
      }
    });

    await Promise.all([s3Done, directDone]);
    injecting = false;
    await injector;
    stack.queue.send = realSend;

    // ------------------------------------------------------------ settle
    await until('the S3 queue to drain', async () => (stack.queue.depth === 0 ? true : undefined), {
      timeoutMs: 90_000,
      everyMs: 200,
      state: () => `${stack.queue.depth} message(s) left`,
    });
    let stillPending: View[] = [];
    const s3Records = await until(
      'every S3 upload out of pending',
      async () => {
        stillPending = (await list('/v1/submissions?status=pending')).filter((v) => v.Object?.Key.includes(s3Task));
        return stillPending.length === 0 ? list(`/v1/tasks/${s3Task}/submissions`) : undefined;
      },
      { timeoutMs: 30_000, everyMs: 200, state: () => JSON.stringify(stillPending.slice(0, 3)) },
    );
    const failedAnywhere = await list('/v1/submissions?status=failed');
    const badTaskRecords = failedAnywhere.filter(
      (v) => v.Object?.Key.includes(s3Task) && v.TaskID !== s3Task && v.Source === 's3',
    );
    const directRecords = await list(`/v1/tasks/${directTask}/submissions`);
    const atIva = await sandboxGet<SandboxSubmission[]>('submissions');
    const requests = await sandboxGet<SandboxRequest[]>('requests');

    // ------------------------------------------------------------ IVA received each at most once
    const bySha = new Map<string, number>();
    for (const s of atIva) bySha.set(s.sha256, (bySha.get(s.sha256) ?? 0) + 1);
    const twice = [...bySha].filter(([, n]) => n > 1);
    // What a double belongs to: which upload or request, its records, and each receipt at IVA.
    const explain = ([hash]: [string, number]): unknown => ({
      sha256: hash,
      uploads: [...uploads]
        .filter(([, b]) => b.some((x) => sha(x) === hash))
        .map(([k, b]) => `${k} (${b.length} bodies)`),
      direct: direct
        .filter((d) => sha(d.bytes) === hash)
        .map((d) => ({ name: d.name, statuses: d.statuses, ids: d.ids })),
      records: [...s3Records, ...badTaskRecords, ...directRecords]
        .filter(
          (r) =>
            (r.Object ? (uploads.get(r.Object.Key) ?? []).some((x) => sha(x) === hash) : false) ||
            direct.some((d) => d.name === r.Name && sha(d.bytes) === hash),
        )
        .map((r) => ({ id: r.SubmissionId, status: r.Status, imageId: r.ImageID, uncertain: r.Uncertain?.Code })),
      atIva: atIva
        .filter((x) => x.sha256 === hash)
        .map((x) => ({
          dataId: x.dataId,
          name: x.name,
          source: x.source,
          requestId: x.requestId,
          at: x.receivedAt,
          url: x.url?.replace(/\?.*$/, ''),
        })),
    });
    expect(twice.map(explain), 'bodies IVA received more than once').toEqual([]);
    const byDataId = new Map(atIva.map((s) => [s.dataId, s]));

    // ------------------------------------------------------------ S3: one visible state each
    const allRecords = [...s3Records, ...badTaskRecords];
    expect(new Set(allRecords.map((r) => r.SubmissionId)).size).toBe(allRecords.length);
    const recordsByKey = new Map<string, View[]>();
    for (const r of allRecords) {
      const key = r.Object?.Key ?? '';
      recordsByKey.set(key, [...(recordsByKey.get(key) ?? []), r]);
    }
    const terminal = new Set(['submitted', 'completed', 'failed', 'uncertain', 'overdue']);
    for (const [key, bodies] of uploads) {
      const records = recordsByKey.get(key) ?? [];
      expect(records.length, `records of ${key}`).toBeGreaterThanOrEqual(1);
      expect(records.length, `records of ${key}`).toBeLessThanOrEqual(bodies.length);
      for (const r of records) expect(terminal.has(r.Status), `${key} is ${r.Status}`).toBe(true);
      const shas = new Set(bodies.map(sha));
      for (const r of records) {
        if (r.ImageID !== undefined) {
          const got = byDataId.get(r.ImageID);
          expect(got, `IVA knows ${key}'s ${r.ImageID}`).toBeDefined();
          expect(shas.has(got?.sha256 ?? ''), `${key}'s ImageID is of its own bytes`).toBe(true);
        }
      }
    }
    for (const r of badTaskRecords) expect(r.Error?.Code).toBe('InvalidTaskID');
    expect(badTaskRecords).toHaveLength(S3_MALFORMED);
    expect(stack.deadLetters, 'messages in the DLQ').toEqual([]);

    // ------------------------------------------------------------ direct
    for (const d of direct.filter((x) => x.malformed)) {
      expect(
        d.statuses.every((s) => s >= 400 && s < 500),
        `${d.name}: ${d.statuses}`,
      ).toBe(true);
      expect(d.ids).toEqual([]);
    }
    const directById = new Map(directRecords.map((r) => [r.SubmissionId, r]));
    expect(
      directRecords.every((r) => !r.Name || !direct.find((d) => d.name === r.Name)?.malformed),
      'a malformed request left a record',
    ).toBe(true);
    for (const d of direct.filter((x) => !x.malformed)) {
      // Same key, same SubmissionId, except after a 5xx: that answer proves IVA did not take
      // it, the key is forgotten (lib/api/idempotency.ts) and the retry is a new submission,
      // so every earlier id of the key must be failed and absent at IVA.
      const ids = [...new Set(d.ids)];
      const records = directRecords.filter((r) => r.Name === d.name);
      const live = records.filter((r) => r.Status !== 'failed');
      expect(live.length, `${d.name}: one live submission per key: ${JSON.stringify(records)}`).toBeLessThanOrEqual(1);
      for (const id of ids.slice(0, -1))
        expect(directById.get(id)?.Status, `${d.name}: an earlier id of its key (${id})`).toBe('failed');
      const atIvaForIt = atIva.filter((s) => s.sha256 === sha(d.bytes));
      const last = d.statuses.at(-1) ?? 0;
      if (last === 200 || last === 202) {
        const record = directById.get(ids.at(-1) ?? '');
        expect(record, `${d.name} answered ${last} has its record`).toBeDefined();
        expect(terminal.has(record?.Status ?? ''), `${d.name} is ${record?.Status}`).toBe(true);
      }
      // IVA's copy (at most one, checked above) belongs to the live submission: a failed
      // attempt whose retry under the same key went through shares its bytes, not its id.
      if (live.length === 0) expect(atIvaForIt, `${d.name} failed but IVA has it`).toEqual([]);
      for (const r of records) {
        if (r.ImageID !== undefined)
          expect(
            atIvaForIt.map((s) => s.dataId),
            `${d.name}'s ImageID`,
          ).toEqual([r.ImageID]);
        if (r.Status === 'failed')
          expect(
            atIvaForIt.every((s) => live.some((l) => l.ImageID === s.dataId || l.Status === 'uncertain')),
            `${d.name}: IVA's copy belongs to its live submission, not to the failed ${r.SubmissionId}`,
          ).toBe(true);
      }
    }

    // ------------------------------------------------------------ uncertain means ambiguous
    const everything = [...allRecords, ...directRecords];
    const uncertain = everything.filter((r) => r.Status === 'uncertain');
    const ambiguousCodes = new Set(['ConnectionLostAfterSend', 'TimeoutAfterSend', 'UnreadableResponse']);
    for (const r of uncertain) expect(ambiguousCodes.has(r.Uncertain?.Code ?? ''), JSON.stringify(r)).toBe(true);
    // Ambiguous means: IVA has the bytes (its answer was lost or came after the timeout, a
    // slow machine included), or the connection died after sending, before IVA read it all.
    const shasOf = (r: View): string[] =>
      r.Object
        ? (uploads.get(r.Object.Key) ?? []).map(sha)
        : direct.filter((d) => d.name === r.Name).map((d) => sha(d.bytes));
    const notAtIva = uncertain.filter((r) => !shasOf(r).some((h) => bySha.has(h)));
    const dropped = requests.filter((q) => q.fault === 'drop').length;
    expect(notAtIva.length, 'uncertain, not at IVA, more than connections dropped').toBeLessThanOrEqual(dropped);
    for (const r of everything.filter((x) => x.Status === 'failed' && x.Object)) {
      const bodies = uploads.get(r.Object?.Key ?? '') ?? [];
      // An overwritten key's first body may have gone to IVA under its own record; any other
      // failed upload must not be at IVA.
      if (bodies.length === 1)
        expect(bySha.has(sha(bodies[0] as Buffer)), `${r.Object?.Key} failed but IVA has it`).toBe(false);
    }

    const states = new Map<string, number>();
    for (const r of everything) states.set(r.Status, (states.get(r.Status) ?? 0) + 1);
    const summary = {
      seed: SEED,
      s3Uploads: [...uploads.values()].reduce((n, b) => n + b.length, 0),
      duplicateDeliveries: duplicated.length,
      directRequests: direct.length,
      ivaRequests: requests.length,
      ivaAccepted: atIva.length,
      injected,
      states: Object.fromEntries(states),
      deadLetters: stack.deadLetters.length,
    };
    process.stdout.write(`fault soak: ${JSON.stringify(summary)}\n`);
  }, 300_000);
});
