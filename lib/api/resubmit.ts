/**
 * POST /v1/submissions/{id}/resubmit: the owner decides that IVA did not take an
 * `uncertain` upload and asks for it to be sent again (lib/iva/README.md, "Which failures
 * are ambiguous"). The object is still in S3, so the submission goes back through the
 * intake queue as an S3 event of its own object, by the same path as any upload
 * (identity, overwrite check, pacing, redelivery): answered 202 with the record `pending`.
 *
 * Order: the message is queued first, invisible for RESUBMIT_DELAY_SECONDS, and only then
 * is the record reopened (`uncertain` → `pending`). A message that arrives while the record
 * is still `uncertain` is a duplicate the intake drops, so a failure or a crash between
 * the two leaves the submission `uncertain` (visible, resubmittable), never `pending`
 * with nothing to drive it. Should the reopen take longer than that delay, a second
 * message is queued (a duplicate is harmless: the ledger's lease admits one submission).
 *
 * A submission made with its bytes in the request (POST /v1/images, /v1/videos) cannot be
 * resubmitted: iva-bridge does not keep those bytes (409 ResubmitNeedsFile).
 */
import { objectCreatedMessage } from '../s3-intake/events';
import { ApiError } from './errors';
import { MAX_NOTE_CHARS, optionalString, ownerActionError, readOwnerBody } from './resolve';
import { json } from './responses';
import { checkSubmissionId, submissionView } from './status';
import type { ApiDeps, ApiRequest, ApiResponse } from './types';

/** How long the queued message stays invisible: far longer than one ledger update. */
export const RESUBMIT_DELAY_SECONDS = 5;
/** No body, or `{"Note": "…"}`. */
function parseNote(req: ApiRequest): string | undefined {
  if (!req.body || req.body.text === '') return undefined;
  return optionalString(readOwnerBody(req, 'resubmit', NOTE_ONLY), 'Note', MAX_NOTE_CHARS);
}

const NOTE_ONLY: ReadonlySet<string> = new Set(['Note']);

export async function handleResubmit(id: string, req: ApiRequest, deps: ApiDeps): Promise<ApiResponse> {
  checkSubmissionId(id);
  const note = parseNote(req);
  const record = await deps.ledger.get(id);
  if (!record) throw new ApiError('SubmissionNotFound', `No submission with id "${id.slice(0, 80)}"`);
  if (record.status !== 'uncertain')
    throw new ApiError(
      'SubmissionNotUncertain',
      `Submission ${id.slice(0, 80)} is ${record.status}; only an uncertain submission can be resubmitted`,
    );
  if (!record.object)
    throw new ApiError(
      'ResubmitNeedsFile',
      `Submission ${id.slice(0, 80)} was sent with its file in the request, which iva-bridge does not keep: send the file again (a new request), then resolve this one with {"Status":"failed"}`,
    );
  if (!deps.intakeQueue)
    throw new ApiError(
      'ResubmitUnavailable',
      'This deployment has no intake queue configured (INTAKE_QUEUE_URL); resubmission is not available',
    );
  const message = objectCreatedMessage(record.object);
  await deps.intakeQueue.send(message, RESUBMIT_DELAY_SECONDS);
  const started = Date.now();
  try {
    const reopened = await deps.ledger.reopenUncertain(id, { leaseMs: 0, ...(note !== undefined ? { note } : {}) });
    if (Date.now() - started >= (RESUBMIT_DELAY_SECONDS - 1) * 1000) await deps.intakeQueue.send(message, 0);
    deps.logger?.info('uncertain submission queued again by its owner', { submissionId: id });
    return json(202, submissionView(reopened));
  } catch (error) {
    // The queued message finds the record not pending and is dropped as a duplicate.
    throw ownerActionError(error, id, 'resubmitted', 'no longer uncertain');
  }
}
