/**
 * POST /v1/submissions/{id}/resolve: the owner's verdict on an `uncertain` submission
 * (lib/iva/README.md): IVA has it (`submitted`, optionally with the data id they found),
 * or it is to be dropped (`failed`). Only an `uncertain` submission can be resolved: any
 * other status answers 409 SubmissionNotUncertain, so a verdict never overwrites IVA's.
 */
import { SubmissionNotFoundError, SubmissionNotUncertainError } from '../ledger/errors';
import type { ResolveInput } from '../ledger/types';
import { decodeBody, header } from './body';
import { ApiError } from './errors';
import { json } from './responses';
import { checkSubmissionId, submissionView } from './status';
import type { ApiDeps, ApiRequest, ApiResponse } from './types';

const MAX_OWNER_BODY_BYTES = 8 * 1024;
export const MAX_NOTE_CHARS = 1_000;
const MAX_ID_CHARS = 256;
const CONTROL = /[\u0000-\u001f\u007f]/;

const FIELDS = new Set(['Status', 'ImageID', 'VideoID', 'DataID', 'RequestId', 'Note']);

function invalid(message: string): ApiError {
  return new ApiError('InvalidResolution', message);
}

export function optionalString(body: Record<string, unknown>, name: string, max: number): string | undefined {
  const value = body[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '' || value.length > max)
    throw invalid(`${name} must be a non-empty string of at most ${max} characters`);
  if (name !== 'Note' && CONTROL.test(value)) throw invalid(`${name} must not contain control characters`);
  return value;
}

/**
 * The JSON object body of an owner's action (resolve, resubmit): its Content-Type, size,
 * syntax and field names checked; 4xx InvalidResolution / InvalidJson / UnsupportedMediaType.
 */
export function readOwnerBody(
  req: ApiRequest,
  action: 'resolve' | 'resubmit',
  fields: ReadonlySet<string>,
): Record<string, unknown> {
  const contentType = header(req, 'content-type') ?? '';
  if (!/^application\/json\b/i.test(contentType.trim()))
    throw new ApiError(
      'UnsupportedMediaType',
      `POST /v1/submissions/{id}/${action} takes a JSON body (Content-Type: application/json), got "${contentType.slice(0, 100)}"`,
    );
  const raw = decodeBody(req, MAX_OWNER_BODY_BYTES, (size) =>
    invalid(
      `The body is ${size} bytes; ${action === 'resolve' ? 'a resolution' : 'a resubmit body'} is at most ${MAX_OWNER_BODY_BYTES} bytes`,
    ),
  );
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8').replace(/^\uFEFF/, ''));
  } catch (error) {
    throw new ApiError('InvalidJson', `The body is not valid JSON (${(error as Error).message.slice(0, 120)})`);
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw invalid('The body must be a JSON object');
  const unknown = Object.keys(body).filter((k) => !fields.has(k));
  if (unknown.length > 0)
    throw invalid(`Unknown field ${JSON.stringify(unknown[0]?.slice(0, 40))}; fields: ${[...fields].join(', ')}`);
  return body as Record<string, unknown>;
}

/** The body: `{"Status":"submitted"|"failed", "ImageID"|"VideoID"|"DataID"?, "RequestId"?, "Note"?}`. */
export function parseResolution(req: ApiRequest): ResolveInput {
  const fields = readOwnerBody(req, 'resolve', FIELDS);
  const note = optionalString(fields, 'Note', MAX_NOTE_CHARS);
  if (fields['Status'] === 'failed') {
    for (const name of ['ImageID', 'VideoID', 'DataID', 'RequestId'])
      if (fields[name] !== undefined) throw invalid(`${name} only goes with "Status":"submitted"`);
    return { status: 'failed', ...(note !== undefined ? { note } : {}) };
  }
  if (fields['Status'] !== 'submitted') throw invalid('Status must be "submitted" (IVA has it) or "failed"');
  const ids = (['ImageID', 'VideoID', 'DataID'] as const)
    .map((name) => [name, optionalString(fields, name, MAX_ID_CHARS)] as const)
    .filter(([, value]) => value !== undefined);
  if (ids.length > 1) throw invalid('Give at most one of ImageID, VideoID, DataID');
  const requestId = optionalString(fields, 'RequestId', MAX_ID_CHARS);
  const [idName, dataId] = ids[0] ?? [];
  return {
    status: 'submitted',
    ...(dataId !== undefined ? { dataId } : {}),
    ...(idName === 'ImageID' ? { kind: 'image' as const } : idName === 'VideoID' ? { kind: 'video' as const } : {}),
    ...(requestId !== undefined ? { requestId } : {}),
    ...(note !== undefined ? { note } : {}),
  };
}

export async function handleResolve(id: string, req: ApiRequest, deps: ApiDeps): Promise<ApiResponse> {
  checkSubmissionId(id);
  const resolution = parseResolution(req);
  try {
    const record = await deps.ledger.resolveUncertain(id, resolution);
    deps.logger?.info('uncertain submission resolved by its owner', { submissionId: id, status: resolution.status });
    return json(200, submissionView(record));
  } catch (error) {
    throw ownerActionError(error, id, 'resolved', 'not uncertain');
  }
}

/**
 * The ledger's refusal of an owner's action on an uncertain submission (resolve,
 * resubmit) as the API answers it: no such submission, or it is not (or no longer)
 * uncertain. Any other error is returned as it is.
 */
export function ownerActionError(error: unknown, id: string, action: string, statusUnknown: string): unknown {
  if (error instanceof SubmissionNotFoundError)
    return new ApiError('SubmissionNotFound', `No submission with id "${id.slice(0, 80)}"`);
  if (error instanceof SubmissionNotUncertainError)
    return new ApiError(
      'SubmissionNotUncertain',
      `Submission ${id.slice(0, 80)} is ${error.status ?? statusUnknown}; only an uncertain submission can be ${action}`,
    );
  return error;
}
