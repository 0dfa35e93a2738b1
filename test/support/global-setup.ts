/**
 * Vitest global setup: says once, up front, why the tests that need a real S3 are
 * skipped and how to run them (they run against the Ceph RADOS Gateway of
 * scripts/ceph-rgw.sh, found through CEPH_S3_* or .local/ceph/ceph.json).
 */
import { cephFromEnv } from '../../local/servers/ceph';

export default function setup(): void {
  if (cephFromEnv()) return;
  console.log(
    'No local Ceph S3: the tests that need a real S3 (signatures, If-None-Match, versions, notifications) are skipped. To run them: sudo bash scripts/ceph-rgw.sh install && bash scripts/ceph-rgw.sh start && source .local/ceph/env && npm test',
  );
}
