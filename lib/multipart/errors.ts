/** All errors of the multipart parser. Codes are stable: the API answers them verbatim. */

export type MultipartErrorCode =
  | 'InvalidContentType'
  | 'MissingBoundary'
  | 'InvalidBoundary'
  | 'MalformedMultipart'
  | 'MalformedPartHeader'
  | 'MissingPartName'
  | 'TruncatedMultipart'
  | 'TooManyParts'
  | 'FieldTooLarge';

export class MultipartError extends Error {
  override readonly name = 'MultipartError';
  constructor(
    readonly code: MultipartErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
