/** Entry point of the `iva-bridge` command (bin/iva-bridge.mjs loads it through tsx). */
import { runCli } from './submit';

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
