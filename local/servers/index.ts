export { startDynalite, type LocalDynalite, type StartDynaliteOptions } from './dynalite';
export {
  startS3rver,
  encodeS3EventKey,
  type LocalS3,
  type StartS3rverOptions,
  type S3EventNotification,
  type S3EventRecord,
  type S3rverInstance,
} from './s3rver';
export { closeServer, listen, urlOf } from './http-close';
export * from './ceph';
