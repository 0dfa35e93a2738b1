/** Local stand-ins used by the tests and by `npm start`. */
export * from './iva-sandbox/index';
export * from './servers/index';
export { createS3Client, forcePathStyleFromEnv, type S3ClientOptions } from '../lib/storage/s3-client';
