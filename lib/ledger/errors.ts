/** All errors of the ledger package. */

import { BridgeError } from '../errors';

export class SubmissionNotFoundError extends BridgeError {
  override readonly name = 'SubmissionNotFoundError';
  constructor(readonly submissionId: string) {
    super('SubmissionNotFound', `No submission with id ${submissionId}`, { httpStatus: 404 });
  }
}

export class InvalidCursorError extends BridgeError {
  override readonly name = 'InvalidCursorError';
  constructor() {
    super('InvalidCursor', 'The cursor is not one this listing returned; start again without it', { httpStatus: 400 });
  }
}

/** An owner's resolution was asked for a submission that is not `uncertain` (any more). */
export class SubmissionNotUncertainError extends BridgeError {
  override readonly name = 'SubmissionNotUncertainError';
  constructor(
    readonly submissionId: string,
    /** Its status now, when known. */
    readonly status?: string,
  ) {
    super(
      'SubmissionNotUncertain',
      `Submission ${submissionId} is ${status ?? 'not uncertain'}: only an uncertain submission can be resolved or resubmitted`,
      { httpStatus: 409 },
    );
  }
}
