/** All errors of the multipart parser. Codes are stable: the API answers them verbatim. */

import { BridgeError } from '../errors';

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

/** The body cannot be framed or parsed: the sender's fault, so 400 and never retryable. */
export class MultipartError extends BridgeError<MultipartErrorCode> {
  override readonly name = 'MultipartError';
  constructor(code: MultipartErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { httpStatus: 400, ...options });
  }
}
