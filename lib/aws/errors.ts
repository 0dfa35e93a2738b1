/**
 * Reading the errors the AWS SDK v3 throws, in one place: every module asks these
 * functions instead of casting `error` to `{ name?: string }` itself.
 *
 * An SDK service error carries `name` (the service's error code, e.g. `NoSuchKey`,
 * `ConditionalCheckFailedException`) and `$metadata.httpStatusCode`; a network failure
 * carries a Node `code` (`ECONNRESET`) and no status. See docs/aws-behaviour.md.
 */

interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

function shape(error: unknown): SdkErrorShape {
  return error !== null && typeof error === 'object' ? (error as SdkErrorShape) : {};
}

/** The error's name (the AWS error code for service errors); `Error` when it has none. */
export function awsErrorName(error: unknown): string {
  const name = shape(error).name;
  return typeof name === 'string' && name ? name : 'Error';
}

/** The HTTP status AWS answered, or undefined when the request got no answer. */
export function awsHttpStatus(error: unknown): number | undefined {
  const status = shape(error).$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

/** Fields for a log line: code (a Node `code` such as ECONNRESET first, else the name), message, status. */
export function awsErrorFields(error: unknown): { errorCode: string; errorMessage: string; httpStatus?: number } {
  const e = shape(error);
  const code = typeof e.code === 'string' && e.code ? e.code : awsErrorName(error);
  const message = typeof e.message === 'string' ? e.message : String(error);
  const httpStatus = awsHttpStatus(error);
  return { errorCode: code, errorMessage: message, ...(httpStatus === undefined ? {} : { httpStatus }) };
}

/** Whether the error is AWS's answer with this name (`ConditionalCheckFailedException`, …). */
export function isAwsError(error: unknown, name: string): boolean {
  return shape(error).name === name;
}

/**
 * What an S3 HeadObject/GetObject error says about the object:
 * - `missing`: S3 said it is not there (404, `NotFound`, `NoSuchKey`, `NoSuchVersion`);
 * - `hidden`: 403. Without `s3:ListBucket` on the bucket S3 answers a missing key with
 *   403 instead of 404, so 403 means "missing, or really forbidden" — S3 will not say which;
 * - `undefined`: anything else (throttling, 5xx, network): the object's state is unknown.
 *
 * The functions hold no s3:ListBucket (least privilege), so each caller decides what
 * `hidden` means for it, in a comment at the call.
 */
export function s3ObjectAbsence(error: unknown): 'missing' | 'hidden' | undefined {
  const name = awsErrorName(error);
  const status = awsHttpStatus(error);
  if (status === 404 || name === 'NotFound' || name === 'NoSuchKey' || name === 'NoSuchVersion') return 'missing';
  if (status === 403) return 'hidden';
  return undefined;
}
