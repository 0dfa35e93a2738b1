/** The sweep's MultipartUploads on S3: ListParts for the latest part, AbortMultipartUpload. */
import { AbortMultipartUploadCommand, ListPartsCommand, type S3Client } from '@aws-sdk/client-s3';
import { awsErrorName } from '../aws/errors';
import type { MultipartUploads } from './index';

export function s3MultipartUploads(s3: S3Client): MultipartUploads {
  return {
    async lastPartAt(record) {
      if (!record.multipart || !record.object) return undefined;
      let latest: Date | undefined;
      let marker: string | undefined;
      try {
        do {
          const page = await s3.send(
            new ListPartsCommand({
              Bucket: record.object.bucket,
              Key: record.object.key,
              UploadId: record.multipart.uploadId,
              ...(marker ? { PartNumberMarker: marker } : {}),
            }),
          );
          for (const part of page.Parts ?? [])
            if (part.LastModified && (!latest || part.LastModified > latest)) latest = part.LastModified;
          marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
        } while (marker);
      } catch (error) {
        if (awsErrorName(error) === 'NoSuchUpload') return undefined;
        throw error;
      }
      return latest;
    },
    async abort(record) {
      if (!record.multipart || !record.object) return;
      try {
        await s3.send(
          new AbortMultipartUploadCommand({
            Bucket: record.object.bucket,
            Key: record.object.key,
            UploadId: record.multipart.uploadId,
          }),
        );
      } catch (error) {
        if (awsErrorName(error) !== 'NoSuchUpload') throw error;
      }
    },
  };
}
