/**
 * One benchmark case in a fresh process, so its peak RSS is its own:
 *   tsx bench/signer-case.ts <variant> <bytes> <runs> <drainUrl>
 * Prints one JSON line: { timesMs, baselineRssKb, peakRssKb }.
 */
import { randomFillSync } from 'node:crypto';
import { request } from 'node:http';
import { createIvaClient } from '../lib/iva/client';
import { BENCH_CREDENTIALS, SdkFormData, sdkSign } from './sdk-alternative';

export type Variant = 'ours' | 'sdk' | 'sdk-nodehash';

const CREDS = BENCH_CREDENTIALS;

function post(url: URL, headers: Record<string, string>, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    // A fresh connection each time: no race with the server closing an idle keep-alive socket.
    const req = request(
      {
        agent: false,
        hostname: url.hostname,
        port: url.port,
        method: 'POST',
        path: '/?Action=AddAsyncTaskImageData&Version=2022-05-13',
        headers: { ...headers, 'Content-Length': String(body.length) },
      },
      (res) => {
        res.resume();
        res.on('end', resolve);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The obvious way with the official SDK: form-data builds the body, the SDK's Signer hashes it. */
async function sdkRun(url: URL, file: Buffer, nodeHash: boolean): Promise<void> {
  const form = new SdkFormData();
  form.append('ImageFile', file, { filename: 'file.bin', contentType: 'application/octet-stream' });
  form.append('Request', JSON.stringify({ TaskID: 'bench', Image: { Name: 'file.bin', Source: 'file' } }));
  const signed = sdkSign(form, url.host, nodeHash);
  await post(url, signed.headers, signed.body);
}

async function main(): Promise<void> {
  const [variant, bytesArg, runsArg, drain] = process.argv.slice(2) as [Variant, string, string, string];
  const url = new URL(drain);
  const file = randomFillSync(Buffer.allocUnsafe(Number(bytesArg)));
  const client = createIvaClient({ credentials: CREDS, endpoint: drain, timeoutMs: 120_000 });
  const once = (): Promise<unknown> =>
    variant === 'ours'
      ? client.submit({ kind: 'image', taskId: 'bench', name: 'file.bin', source: { type: 'file', data: file } })
      : sdkRun(url, file, variant === 'sdk-nodehash');
  // Modules loaded and the file in memory: what is measured is the extra a submission costs.
  const baselineRssKb = process.resourceUsage().maxRSS;
  await once(); // warm-up (JIT, connection): not timed, but counted in the peak
  const timesMs: number[] = [];
  for (let i = 0; i < Number(runsArg); i++) {
    const started = performance.now();
    await once();
    timesMs.push(performance.now() - started);
  }
  client.close?.();
  process.stdout.write(`${JSON.stringify({ timesMs, baselineRssKb, peakRssKb: process.resourceUsage().maxRSS })}\n`);
}

await main();
