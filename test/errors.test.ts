import { describe, expect, it } from 'vitest';
import { BridgeError, isBridgeError } from '../lib/errors';

class ExampleError extends BridgeError {
  override readonly name = 'ExampleError';
  constructor(cause?: unknown) {
    super('Example', 'an example failed', { httpStatus: 503, retryable: true, cause });
  }
}

describe('BridgeError', () => {
  it('carries code, HTTP status, retryable and cause, and subclasses keep their own name', () => {
    const root = new Error('root');
    const error = new ExampleError(root);
    expect(error).toBeInstanceOf(BridgeError);
    expect(error).toBeInstanceOf(Error);
    expect(isBridgeError(error)).toBe(true);
    expect(error.name).toBe('ExampleError');
    expect(error.code).toBe('Example');
    expect(error.httpStatus).toBe(503);
    expect(error.retryable).toBe(true);
    expect(error.cause).toBe(root);
    expect(String(error)).toBe('ExampleError: an example failed');
  });

  it('defaults to no HTTP status, not retryable, and no cause property', () => {
    const error = new BridgeError('Plain', 'plain');
    expect(error.httpStatus).toBeUndefined();
    expect(error.retryable).toBe(false);
    expect('cause' in error).toBe(false);
    expect(isBridgeError(new Error('x'))).toBe(false);
  });
});
