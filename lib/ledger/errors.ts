/** All errors of the ledger package. */

export class SubmissionNotFoundError extends Error {
  override readonly name = 'SubmissionNotFoundError';
  readonly code = 'SubmissionNotFound';
  constructor(readonly submissionId: string) {
    super(`No submission with id ${submissionId}`);
  }
}

export class InvalidCursorError extends Error {
  override readonly name = 'InvalidCursorError';
  readonly code = 'InvalidCursor';
  constructor() {
    super('The cursor is not one this listing returned; start again without it');
  }
}

/** An owner's resolution was asked for a submission that is not `uncertain` (any more). */
export class SubmissionNotUncertainError extends Error {
  override readonly name = 'SubmissionNotUncertainError';
  readonly code = 'SubmissionNotUncertain';
  constructor(
    readonly submissionId: string,
    /** Its status now, when known. */
    readonly status?: string,
  ) {
    super(
      `Submission ${submissionId} is ${status ?? 'not uncertain'}: only an uncertain submission can be resolved or resubmitted`,
    );
  }
}
