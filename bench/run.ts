/** `npm run bench`: runs each benchmark module and prints its table. */
import { benchBacklog } from './backlog';
import { benchCallbackInbox } from './callback-inbox';
import { benchDirectSubmit } from './direct-submit';
import type { BenchTable } from './harness';
import { benchSigner } from './signer';
import { benchUpload } from './upload';

function render(table: BenchTable): string {
  const widths = table.columns.map((column, i) =>
    Math.max(column.length, ...table.rows.map((row) => (row[i] ?? '').length)),
  );
  const format = (cells: string[]): string =>
    `| ${cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(' | ')} |`;
  return [
    `## ${table.title}`,
    '',
    format(table.columns),
    `|${widths.map((w, i) => (i < 2 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
    ...table.rows.map(format),
    '',
    ...table.notes.map((note) => `- ${note}`),
    '',
  ].join('\n');
}

const benches: Array<{ name: string; run: () => Promise<BenchTable> }> = [
  { name: 'signer', run: () => benchSigner() },
  { name: 'direct-submit', run: () => benchDirectSubmit() },
  { name: 'backlog', run: () => benchBacklog() },
  { name: 'callback-inbox', run: () => benchCallbackInbox() },
  { name: 'upload', run: () => benchUpload() },
];

const only = process.argv.slice(2);
for (const bench of benches) {
  if (only.length > 0 && !only.includes(bench.name)) continue;
  process.stdout.write(`${render(await bench.run())}\n`);
}
