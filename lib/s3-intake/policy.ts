/**
 * What becomes of an upload, decided without I/O: whether it may be sent at all (the
 * object is there and unchanged, its fields pass the rules, time is left), and what an
 * IVA failure makes of it. process.ts carries the verdicts out (ledger, metrics, logs).
 */
import { isCredentialProblem, IvaAmbiguousError, type IvaError } from '../iva/errors';
import type { SubmissionError, UncertainInfo } from '../ledger/types';
import { redactSignedUrls } from '../storage/presign';
import { IntakeRuleError } from './errors';
import { isThrottle } from './pacer';
import type { Decision, PartialPlan, SubmissionPlan } from './rules';

export type Preflight =
  /** Never sendable: recorded failed (with the fields known, if any) and acknowledged. */
  | { action: 'fail'; failure: SubmissionError; fields?: PartialPlan }
  /** Too little time for IVA: recorded pending and deferred to SQS's redelivery (never the DLQ for that). */
  | { action: 'defer'; failure: SubmissionError; budgetMs: number }
  | { action: 'send'; plan: SubmissionPlan };

/** An upload whose key was overwritten before it was sent (the newer upload has its own event). */
export const OVERWRITTEN: SubmissionError = {
  code: 'ObjectOverwritten',
  message: 'The object was overwritten before this upload was submitted; the newer upload is a submission of its own',
};

/**
 * Whether an upload goes to IVA now. `decision` is the rules' verdict (undefined: the
 * object is gone); `budgetMs` is read only once everything else allows sending.
 */
export function preflight(
  decision: Decision | undefined,
  overwritten: boolean,
  fields: PartialPlan,
  budgetMs: () => number,
  minBudgetMs: number,
): Preflight {
  if (!decision) {
    const error = new IntakeRuleError(
      'ObjectNotFound',
      'The object (or this version of it) no longer exists, or this function may not read it (S3 answers both with 403 to a role without s3:ListBucket); nothing to submit',
    );
    return { action: 'fail', failure: { code: error.code, message: error.message } };
  }
  // This upload can never be sent; it is recorded failed so its owner sees what became of it.
  if (overwritten) return { action: 'fail', failure: OVERWRITTEN, fields };
  if (!decision.ok)
    return {
      action: 'fail',
      failure: { code: decision.error.code, message: decision.error.message },
      fields: decision.partial,
    };
  const budget = budgetMs();
  if (budget < minBudgetMs) {
    // Recorded before it is handed back, so the upload is never invisible while it waits.
    return {
      action: 'defer',
      failure: {
        code: 'NoTimeLeft',
        message: `Only ${budget} ms of this invocation were left for IVA; SQS redelivers it`,
      },
      budgetMs: budget,
    };
  }
  return { action: 'send', plan: decision.plan };
}

export type IvaFailureVerdict =
  /**
   * Our Volcengine keys were refused (or could not even be read from Secrets Manager),
   * not this upload: kept pending for SQS (then the DLQ, with its redrive) until the
   * secret is fixed, and the secret re-read. Never `failed`: nothing would submit it again.
   */
  | { action: 'retry-credentials'; failure: SubmissionError }
  /**
   * IVA may have it: a redelivery must not send it again (begin() treats an uncertain
   * record as done). Its owner resolves it (lib/iva/README.md).
   */
  | { action: 'uncertain'; info: UncertainInfo }
  /** IVA did not take it and may later: pending, SQS redelivers it (the DLQ after maxReceiveCount). */
  | { action: 'retry'; failure: SubmissionError }
  /**
   * IVA's flow limit: pending, and deferred to SQS's redelivery with a growing delay; the
   * upload is fine, so throttling alone never sends it to the DLQ (redelivery.ts).
   */
  | { action: 'defer'; failure: SubmissionError }
  /** IVA refused it for good: failed, with IVA's code, message and RequestId. */
  | { action: 'fail'; failure: SubmissionError };

/** What an IVA failure makes of the upload; the recorded message never holds a usable URL. */
export function ivaFailurePolicy(error: IvaError): IvaFailureVerdict {
  // Recorded in the ledger, which GET /v1/submissions shows: no usable URL in it.
  const failure: SubmissionError = {
    code: error.code,
    // The code and RequestId have fields of their own; IvaError's message repeats them.
    message: redactSignedUrls(error.detail),
    ...(error.requestId ? { requestId: error.requestId } : {}),
  };
  if (isCredentialProblem(error)) return { action: 'retry-credentials', failure };
  if (error instanceof IvaAmbiguousError)
    return {
      action: 'uncertain',
      info: {
        code: error.code,
        message: failure.message,
        sentAt: new Date(error.sentAt).toISOString(),
        failedAt: new Date(error.failedAt).toISOString(),
      },
    };
  if (error.retryable) return { action: isThrottle(error) ? 'defer' : 'retry', failure };
  return { action: 'fail', failure };
}
