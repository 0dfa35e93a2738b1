/**
 * Runs the IVA sandbox on its own: `npx tsx local/iva-sandbox/main.ts`.
 * Credentials: VOLC_ACCESSKEY / VOLC_SECRETKEY (VOLC_SESSION_TOKEN optional), else the
 * built-in sandbox key. IVA_SANDBOX_PORT picks the port (default: a free one);
 * IVA_SANDBOX_CALLBACK_URL sets where results are posted.
 */
import { ENV } from '../../lib/config';
import { DEFAULT_SANDBOX_CREDENTIALS, startIvaSandbox } from './server';

const env = process.env;
const credentials =
  env[ENV.volcAccessKey] && env[ENV.volcSecretKey]
    ? {
        accessKeyId: env[ENV.volcAccessKey]!,
        secretAccessKey: env[ENV.volcSecretKey]!,
        ...(env[ENV.volcSessionToken] ? { sessionToken: env[ENV.volcSessionToken]! } : {}),
      }
    : DEFAULT_SANDBOX_CREDENTIALS;

const sandbox = await startIvaSandbox({
  port: Number(env.IVA_SANDBOX_PORT ?? 0),
  credentials,
  callbackUrl: env.IVA_SANDBOX_CALLBACK_URL || undefined,
  log: (line) => console.log(`[iva-sandbox] ${line}`),
});

// The access key id is not secret; the secret key is never printed.
console.log(`IVA sandbox listening on ${sandbox.url}`);
console.log(
  `  access key id: ${credentials.accessKeyId}${credentials === DEFAULT_SANDBOX_CREDENTIALS ? ' (built-in sandbox key; secret in local/iva-sandbox/server.ts)' : ' (from VOLC_ACCESSKEY)'}`,
);
console.log(
  `  set ${ENV.ivaEndpoint}=${sandbox.url}; control: ${sandbox.url}/__sandbox/{submissions,callbacks,requests,faults,reset,config}`,
);

const stop = (): void => {
  void sandbox.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
