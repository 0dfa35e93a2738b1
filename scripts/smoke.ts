/**
 * `npm run smoke` — checks a running iva-bridge end to end and prints one table: each AWS
 * behaviour the code relies on, expected, observed (lib/smoke/run.ts).
 *
 *   npm run smoke                          the deployed stack IvaBridge (CloudFormation outputs;
 *                                          your AWS credentials and region, e.g. AWS_PROFILE)
 *   npm run smoke -- --stack MyStack       another stack name
 *   npm run smoke -- --local [file]        `npm start` (its .local/stack.json, or the file given)
 *   npm run smoke -- --real-iva            run against a stack that calls Volcengine itself
 *
 * Deploy in sandbox mode first (`-c ivaMode=sandbox`): it submits small random files to
 * whatever IVA the stack calls, and a stack whose IvaMode output is not `sandbox` is refused
 * unless --real-iva is given (IVA would refuse and bill them). Exits 1 when a row fails,
 * 2 when the run could not start.
 */
import { resolve } from 'node:path';
import { awsTarget } from '../lib/smoke/aws';
import { localTargetFromFile } from '../lib/smoke/local';
import { formatTable, runSmoke, type SmokeTarget } from '../lib/smoke/run';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

async function main(argv: string[]): Promise<number> {
  let target: SmokeTarget;
  const local = argv.indexOf('--local');
  if (local >= 0) {
    const file = argv[local + 1] && !argv[local + 1]?.startsWith('--') ? argv[local + 1] : '.local/stack.json';
    target = await localTargetFromFile(resolve(process.cwd(), file as string));
  } else {
    const at = argv.indexOf('--stack');
    const stackName = (at >= 0 ? argv[at + 1] : undefined) ?? process.env.IVA_BRIDGE_STACK ?? 'IvaBridge';
    target = await awsTarget(stackName);
  }
  if (target.ivaMode !== 'sandbox' && !argv.includes('--real-iva')) {
    console.error(
      `${target.name} calls Volcengine itself (stack output IvaMode is not "sandbox"): the run would submit random files that IVA refuses and bills. Deploy with -c ivaMode=sandbox, or pass --real-iva to run anyway.`,
    );
    return 2;
  }
  console.log(`iva-bridge smoke run against ${target.name} (${target.apiUrl})`);
  console.log(
    `IVA: ${target.ivaMode === 'sandbox' ? `the sandbox${target.ivaEndpoint ? ` (${target.ivaEndpoint})` : ''}` : 'Volcengine (--real-iva)'}`,
  );
  const rows = await runSmoke(target, { log: (line) => console.log(line) });
  console.log(`\n${formatTable(rows)}\n`);
  const failed = rows.filter((r) => !r.ok).length;
  console.log(failed ? `${failed} of ${rows.length} rows failed` : `all ${rows.length} rows passed`);
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`smoke run failed: ${(error as Error).message}`);
    process.exit(2);
  },
);
