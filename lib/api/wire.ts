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

/** One presigned UploadPart URL of a multipart upload: PUT exactly `Size` bytes of the file there. */
export interface UploadPartUrl {
  PartNumber: number;
  Url: string;
  /** Bytes of this part: `PartSize`, the last one the rest of the file. */
  Size: number;
}

/**
 * POST /v1/uploads for a multipart upload: the plan (part size and count), the first
 * part URLs, and the routes that give more (`…/parts`), finish (`…/complete`) or abort it.
 */
export interface MultipartUploadTicket {
  SubmissionId: string;
  Method: 'MULTIPART';
  UploadId: string;
  PartSize: number;
  PartCount: number;
  /** The first parts' URLs (at most 32); POST /v1/uploads/{id}/parts gives any others. */
  Parts: UploadPartUrl[];
  /** When these URLs stop working. */
  ExpiresAt: string;
  Key: string;
  Bucket: string;
}

/** POST /v1/uploads/{id}/parts: fresh URLs for the part numbers asked for. */
export interface UploadPartUrls {
  SubmissionId: string;
  UploadId: string;
  Parts: UploadPartUrl[];
  ExpiresAt: string;
}

/** POST /v1/uploads/{id}/complete: the object is in S3 and takes the S3 upload path from here. */
export interface CompletedUpload {
  SubmissionId: string;
  Bucket: string;
  Key: string;
  Size: number;
  /** The object's ETag, when this call completed it (absent when an earlier call had). */
  ETag?: string;
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
