/**
 * POWERTOOLS_LOGGER_LOG_EVENT=true is a common debugging switch. On this function the
 * event carries the client's API key (header and requestContext) and whole request
 * bodies: the handler must never log it, whatever the environment says.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';

vi.hoisted(() => {
  process.env.POWERTOOLS_LOGGER_LOG_EVENT = 'true';
  process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
});

import { createHandler } from '../../../functions/direct-submit/handler';
import type { Ledger } from '../../../lib/ledger/types';
import { lambdaContext, restEvent } from './events';

const API_KEY = 'k3y-THAT-MUST-NOT-BE-LOGGED-0123456789';
const BODY_MARKER = 'BODY-MARKER-NOT-FOR-LOGS';

afterEach(() => {
  vi.restoreAllMocks();
});

function captureStdout(): string[] {
  const out: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  });
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void out.push(args.map(String).join(' ')));
  vi.spyOn(console, 'info').mockImplementation((...args: unknown[]) => void out.push(args.map(String).join(' ')));
  return out;
}

describe('direct-submit never logs the invocation event', () => {
  it('logs its own lines but not the API key or the body, even with POWERTOOLS_LOGGER_LOG_EVENT=true', async () => {
    const ledger = { get: async () => undefined } as unknown as Ledger;
    const handler = createHandler({
      ledger,
      iva: { submit: async () => Promise.reject(new Error('not called')) },
      s3: {} as never,
      bucket: 'b',
      config: { directMaxBytes: 1024, uploadUrlTtlSeconds: 60, ivaService: 'iva', ivaRegion: 'cn-north-1' },
    });
    const event = restEvent({
      method: 'GET',
      path: '/v1/submissions/api_x',
      headers: { 'x-api-key': API_KEY },
      body: BODY_MARKER,
    });
    event.requestContext.identity.apiKey = API_KEY;
    const lines = captureStdout();
    const result = await handler(event, lambdaContext());
    vi.restoreAllMocks();
    expect(result.statusCode).toBe(404);
    const logged = lines.join('');
    expect(logged).toContain('answered');
    expect(logged).not.toContain(API_KEY);
    expect(logged).not.toContain(BODY_MARKER);
  });
});
