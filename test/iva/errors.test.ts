import { describe, expect, it } from 'vitest';
import { CREDENTIAL_CODES, IvaError, isRetryableCode, RESIGN_CODES } from '../../lib/iva/errors';

// docs/iva-api.md, "Gateway error codes". Each code is checked with statuses the
// fallback would NOT retry (200: the error in a 200 body, 400, none): the code alone decides.
const RETRYABLE = [
  'FlowLimitExceeded',
  'AccountFlowLimitExceeded',
  'InternalError',
  'FailToConnect',
  'InternalServiceError',
  'ServiceUnavailableTemp',
  'InternalServiceTimeout',
];
const PERMANENT: [string, number][] = [
  ['MissingParameter', 400],
  ['InvalidParameter', 400],
  ['MissingRequestInfo', 400],
  ['InvalidAuthorization', 400],
  ['InvalidCredential', 400],
  ['MissingAuthenticationToken', 401],
  ['MissingSignature', 401],
  ['InvalidAccessKey', 401],
  ['InvalidClientTokenId', 401],
  ['SignatureDoesNotMatch', 401],
  ['InvalidSecretToken', 401],
  ['LackPolicy', 403],
  ['AccessDenied', 403],
  ['ServiceNotFound', 404],
  ['InvalidActionOrVersion', 404],
  ['MethodNotAllowed', 405],
];

describe('IVA error classification', () => {
  it.each(RETRYABLE)('retries %s by its code, whatever HTTP status carries it', (code) => {
    for (const status of [200, 400, undefined]) {
      expect(isRetryableCode(code, status)).toBe(true);
      expect(new IvaError({ code, message: 'x', httpStatus: status }).retryable).toBe(true);
    }
  });

  it.each(PERMANENT)('never retries %s (HTTP %i)', (code, status) => {
    expect(isRetryableCode(code, status)).toBe(false);
    expect(new IvaError({ code, message: 'x', httpStatus: status }).retryable).toBe(false);
  });

  it('never retries a refusal of our own keys, even when a 5xx or 429 carries it', () => {
    for (const code of CREDENTIAL_CODES) {
      for (const status of [429, 500, 503]) expect(isRetryableCode(code, status)).toBe(false);
    }
  });

  it('re-signs InvalidTimestamp instead of retrying it blindly', () => {
    expect(RESIGN_CODES.has('InvalidTimestamp')).toBe(true);
    expect(isRetryableCode('InvalidTimestamp', 503)).toBe(false);
  });

  it('falls back to the status class only for codes it does not know', () => {
    expect(isRetryableCode('SomethingNew', 429)).toBe(true);
    expect(isRetryableCode('SomethingNew', 502)).toBe(true);
    expect(isRetryableCode('SomethingNew', 400)).toBe(false);
    expect(isRetryableCode('SomethingNew')).toBe(false);
  });
});
