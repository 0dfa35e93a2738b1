/** All errors of the S3 intake package. */
import { BridgeError } from '../errors';
import type { SubmissionFieldCode } from '../submission/validate';

/** Codes recorded on a submission that can never be sent (the upload itself is wrong). */
export type IntakeFailureCode =
  | 'MissingTaskId'
  // The field rules shared with the API (lib/submission): the same codes as its 400s.
  | SubmissionFieldCode
  | 'UnsupportedMediaType'
  | 'InvalidAlgoParamConf'
  | 'ImageTooLarge'
  | 'ObjectNotFound';

/** A permanent problem with the uploaded object: recorded as failed, IVA is not called. */
export class IntakeRuleError extends BridgeError<IntakeFailureCode> {
  override readonly name = 'IntakeRuleError';
}

/** An SQS message this function cannot read: reported as a batch failure so it ends in the DLQ. */
export class MalformedMessageError extends BridgeError {
  override readonly name = 'MalformedMessageError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('MalformedMessage', message, options);
  }
}
