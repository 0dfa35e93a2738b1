import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Function processes' output is shown only for a failing test.
    setupFiles: ['test/support/function-output.ts'],
    // One line up front when the real-S3 (Ceph) tests will be skipped, and how to run them.
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Tests start real servers on 127.0.0.1; two cores are shared, so keep workers few.
    pool: 'forks',
    maxWorkers: 2,
    // Node 20 is what this machine has; the warning is about SDK releases after Jan 2027.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
