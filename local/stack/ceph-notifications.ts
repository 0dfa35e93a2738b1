/**
 * Bucket notifications from a Ceph RADOS Gateway (docs/local-s3.md), set up
 * by local/servers/ceph.ts enableBucketNotifications: RGW pushes each record as an
 * HTTP POST to a receiver of ours, synchronously with the upload (non-persistent
 * topic), so the receiver answers at once and hands the body on.
 */
import { createServer, type Server } from 'node:http';
import { PutBucketNotificationConfigurationCommand, type S3Client } from '@aws-sdk/client-s3';
import { closeServer, listen, urlOf } from '../servers/http-close';

export interface NotificationReceiver {
  url: string;
  close(): Promise<void>;
}

/** An HTTP endpoint RGW pushes records to; `onNotification` gets each parsed body. */
export async function startNotificationReceiver(
  onNotification: (body: unknown) => void,
  log?: (line: string) => void,
): Promise<NotificationReceiver> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(200, { 'content-length': 0 });
      res.end();
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        onNotification(JSON.parse(text));
      } catch {
        log?.(`s3: ignored a notification that is not JSON (${text.length} bytes)`);
      }
    });
  });
  const address = await listen(server, 0);
  return { url: `${urlOf(address)}/s3-events`, close: () => closeServer(server) };
}

/** Removes the bucket's notification configuration: the receiver is going away. */
export async function disableNotifications(s3: S3Client, bucket: string): Promise<void> {
  await s3.send(new PutBucketNotificationConfigurationCommand({ Bucket: bucket, NotificationConfiguration: {} }));
}
