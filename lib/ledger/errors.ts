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
