import { NoSuchKey, NotFound, S3ServiceException } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { awsErrorFields, awsErrorName, awsHttpStatus, isAwsError, s3ObjectAbsence } from '../../lib/aws/errors';

const meta = (httpStatusCode: number) => ({ httpStatusCode, attempts: 1, totalRetryDelay: 0 });

describe('reading AWS SDK errors', () => {
  it('reads the name and status of a service error, and tolerates anything thrown', () => {
    const denied = new S3ServiceException({ name: 'AccessDenied', $fault: 'client', $metadata: meta(403) });
    expect(awsErrorName(denied)).toBe('AccessDenied');
    expect(awsHttpStatus(denied)).toBe(403);
    expect(isAwsError(denied, 'AccessDenied')).toBe(true);
    expect(isAwsError(denied, 'NoSuchKey')).toBe(false);
    for (const odd of [undefined, null, 'text', 42, {}, { name: 7, $metadata: { httpStatusCode: '500' } }]) {
      expect(awsErrorName(odd)).toBe('Error');
      expect(awsHttpStatus(odd)).toBeUndefined();
    }
  });

  it('names a network failure by its Node code and gives no status', () => {
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    expect(awsErrorFields(reset)).toEqual({ errorCode: 'ECONNRESET', errorMessage: 'socket hang up' });
    const throttled = new S3ServiceException({ name: 'SlowDown', $fault: 'server', $metadata: meta(503) });
    expect(awsErrorFields(throttled)).toMatchObject({ errorCode: 'SlowDown', httpStatus: 503 });
  });

  it('tells a missing object (404) from a hidden one (403 without s3:ListBucket) from an unknown state', () => {
    expect(s3ObjectAbsence(new NotFound({ message: 'NotFound', $metadata: meta(404) }))).toBe('missing');
    expect(s3ObjectAbsence(new NoSuchKey({ message: 'NoSuchKey', $metadata: meta(404) }))).toBe('missing');
    // s3rver and some proxies name it without a status.
    expect(s3ObjectAbsence(Object.assign(new Error('x'), { name: 'NoSuchVersion' }))).toBe('missing');
    const forbidden = new S3ServiceException({ name: '403', $fault: 'client', $metadata: meta(403) });
    expect(s3ObjectAbsence(forbidden)).toBe('hidden');
    const slow = new S3ServiceException({ name: 'SlowDown', $fault: 'server', $metadata: meta(503) });
    expect(s3ObjectAbsence(slow)).toBeUndefined();
    expect(s3ObjectAbsence(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBeUndefined();
  });
});
