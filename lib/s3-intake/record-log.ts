/** One record's log lines: the keys every line carries, every string made safe to log. */
import { awsErrorFields } from '../aws/errors';
import { IvaError } from '../iva/errors';
import type { LoggerPort } from '../observability';
import { redactSignedUrls } from '../storage/presign';
import { escapeForLog } from '../submission/validate';

export type Attrs = Record<string, unknown>;

/** Longest string value a log line carries (an S3 key is at most 1024 bytes; IVA's messages are short). */
const LOG_VALUE_MAX_CHARS = 500;

/** Every string in a log line made safe: the key, the metadata and the errors are the uploader's text. */
export function safeAttrs(attrs: Attrs): Attrs {
  const out: Attrs = {};
  for (const [k, v] of Object.entries(attrs)) out[k] = typeof v === 'string' ? escapeForLog(v, LOG_VALUE_MAX_CHARS) : v;
  return out;
}

/** Keys every line about one record carries; concurrency-safe (no shared appendKeys). */
export class RecordLog {
  readonly keys: Attrs;
  constructor(
    private readonly sink: LoggerPort,
    base: Attrs,
  ) {
    this.keys = { ...base };
  }
  set(more: Attrs): void {
    for (const [k, v] of Object.entries(more)) if (v !== undefined) this.keys[k] = v;
  }
  info(message: string, extra: Attrs = {}): void {
    this.sink.info(message, safeAttrs({ ...this.keys, ...extra }));
  }
  warn(message: string, extra: Attrs = {}): void {
    this.sink.warn(message, safeAttrs({ ...this.keys, ...extra }));
  }
  error(message: string, extra: Attrs = {}): void {
    this.sink.error(message, safeAttrs({ ...this.keys, ...extra }));
  }
}

export function errorFields(error: unknown): Attrs {
  // IVA's message may quote the presigned Url it was given: never log its signature.
  if (error instanceof IvaError)
    return {
      errorCode: error.code,
      errorMessage: redactSignedUrls(error.message),
      requestId: error.requestId,
      retryable: error.retryable,
    };
  return awsErrorFields(error);
}
