/**
 * Answers of the HTTP API that its clients read field by field: one definition for the
 * handlers that build them (uploads.ts, results.ts) and the client library that returns
 * them (lib/client, published as `iva-bridge/client`). Types only, no imports.
 */

/** POST /v1/uploads: where and how to PUT the file. */
export interface UploadTicket {
  SubmissionId: string;
  Url: string;
  Method: 'PUT';
  /** Every header the PUT must send: the signature covers them. */
  Headers: Record<string, string>;
  ExpiresAt: string;
  Key: string;
  Bucket: string;
}

/** One stored callback body in GET /v1/submissions/{id}/results. */
export interface ResultItem {
  ResultId: string;
  Size: number;
  /** When S3 stored it (the first receipt: replays are not stored again). */
  StoredAt?: string;
  /** True for the body the submission's status comes from. */
  Current: boolean;
  /** Path, relative to the API root, that fetches it. */
  Url: string;
}
