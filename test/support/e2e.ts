/**
 * Scaffolding the end-to-end tests share: waiting for something to become true, and the
 * S3 backends a local-stack test runs on (s3rver always, Ceph RGW when one is running).
 */
import { requireCeph } from '../../local/servers/ceph';
import type { ExternalS3 } from '../../local/stack/index';

export interface UntilOptions {
  /** @default 20_000 */
  timeoutMs?: number;
  /** @default 100 */
  everyMs?: number;
  /** Appended to the timeout message: what the world looked like instead. */
  state?: () => string;
}

/** Polls `probe` until it returns a value (not undefined); fails naming `what` after the timeout. */
export async function until<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  options: UntilOptions = {},
): Promise<T> {
  const end = Date.now() + (options.timeoutMs ?? 20_000);
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) {
      const state = options.state?.();
      throw new Error(`timed out waiting for ${what}${state === undefined ? '' : ` ${state}`}`);
    }
    await new Promise((r) => setTimeout(r, options.everyMs ?? 100));
  }
}

export interface StackBackend {
  name: 's3rver' | 'ceph';
  /** The external S3 to run the stack on; none: the stack starts its own s3rver. */
  s3?: () => ExternalS3;
  enabled: boolean;
}

/** s3rver, and Ceph RGW (it verifies presigned URLs' signatures) when it is configured. */
export function stackBackends(): StackBackend[] {
  const ceph = requireCeph();
  return [
    { name: 's3rver', enabled: true },
    {
      name: 'ceph',
      enabled: ceph !== undefined,
      s3: () => {
        if (!ceph) throw new Error('Ceph RGW is not configured');
        return {
          endpoint: ceph.endpoint,
          region: ceph.region,
          accessKeyId: ceph.accessKeyId,
          secretAccessKey: ceph.secretAccessKey,
          notifications: 'ceph',
        };
      },
    },
  ];
}
