/**
 * A local EventBridge endpoint: speaks the JSON protocol of `AWSEvents.PutEvents`
 * (X-Amz-Target header, application/x-amz-json-1.1) so the real SDK client works through
 * AWS_ENDPOINT_URL_EVENTBRIDGE. It records and logs every entry; there are no rules.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeServer, listen, urlOf } from '../servers/http-close';

/** An event as EventBridge delivers it to a rule's target (`detail-type`, not PutEvents' `DetailType`). */
export interface RecordedEvent {
  version: '0';
  id: string;
  'detail-type': string;
  source: string;
  account: string;
  time: string;
  region: string;
  resources: string[];
  /** Parsed Detail. */
  detail: Record<string, unknown>;
  /** Not in AWS's envelope: the bus the entry was put on. */
  eventBusName: string;
}

export interface LocalEventBridge {
  url: string;
  events: RecordedEvent[];
  emitter: EventEmitter<{ event: [RecordedEvent] }>;
  /**
   * Answers the next `count` PutEvents calls with EventBridge's 500 InternalException
   * (nothing recorded), as a failing EventBridge would; `faultsLeft` counts down.
   */
  failPutEvents(count: number): void;
  readonly faultsLeft: number;
  close(): Promise<void>;
}

const MAX_ENTRIES = 10;
const MAX_REQUEST_BYTES = 256 * 1024;

interface Entry {
  Source?: unknown;
  DetailType?: unknown;
  Detail?: unknown;
  EventBusName?: unknown;
  Resources?: unknown;
  Time?: unknown;
}

export async function startEventBridge(
  options: { port?: number; region?: string; log?: (line: string) => void } = {},
): Promise<LocalEventBridge> {
  const events: RecordedEvent[] = [];
  const emitter = new EventEmitter<{ event: [RecordedEvent] }>();
  let faults = 0;

  const reply = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/x-amz-json-1.1',
      'content-length': Buffer.byteLength(text),
      'x-amzn-requestid': randomUUID(),
    });
    res.end(text);
  };

  const handle = (req: IncomingMessage, res: ServerResponse, raw: Buffer): void => {
    const target = String(req.headers['x-amz-target'] ?? '');
    if (req.method !== 'POST' || target !== 'AWSEvents.PutEvents') {
      reply(res, 400, {
        __type: 'UnknownOperationException',
        message: `This local EventBridge serves AWSEvents.PutEvents only, not "${target}".`,
      });
      return;
    }
    if (faults > 0) {
      faults -= 1;
      options.log?.(`eventbridge: PutEvents refused (injected fault, ${faults} left)`);
      reply(res, 500, { __type: 'InternalException', message: 'Injected fault: the request failed.' });
      return;
    }
    if (raw.length > MAX_REQUEST_BYTES) {
      reply(res, 400, {
        __type: 'ValidationException',
        message: 'Total size of the entries in the request is over the limit.',
      });
      return;
    }
    let body: { Entries?: unknown };
    try {
      body = JSON.parse(raw.toString('utf8')) as { Entries?: unknown };
    } catch {
      reply(res, 400, { __type: 'SerializationException', message: 'The request body is not JSON.' });
      return;
    }
    const entries = body.Entries;
    if (!Array.isArray(entries) || entries.length < 1 || entries.length > MAX_ENTRIES) {
      reply(res, 400, {
        __type: 'ValidationException',
        message: `Entries must hold 1 to ${MAX_ENTRIES} items.`,
      });
      return;
    }
    let failed = 0;
    const results = (entries as Entry[]).map((entry) => {
      const error = invalid(entry);
      if (error) {
        failed += 1;
        return { ErrorCode: 'InvalidArgument', ErrorMessage: error };
      }
      const event: RecordedEvent = {
        version: '0',
        id: randomUUID(),
        'detail-type': entry.DetailType as string,
        source: entry.Source as string,
        account: '000000000000',
        // EventBridge's time has second precision.
        time: (typeof entry.Time === 'number' ? new Date(entry.Time * 1000) : new Date())
          .toISOString()
          .replace(/\.\d{3}Z$/, 'Z'),
        region: options.region ?? 'us-east-1',
        resources: Array.isArray(entry.Resources)
          ? entry.Resources.filter((r): r is string => typeof r === 'string')
          : [],
        detail: JSON.parse(entry.Detail as string) as Record<string, unknown>,
        eventBusName: typeof entry.EventBusName === 'string' && entry.EventBusName ? entry.EventBusName : 'default',
      };
      events.push(event);
      options.log?.(
        `eventbridge: ${event.source} "${event['detail-type']}" on bus ${event.eventBusName}: ${describe(event.detail)}`,
      );
      emitter.emit('event', event);
      return { EventId: event.id };
    });
    reply(res, 200, { FailedEntryCount: failed, Entries: results });
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks)));
  });
  const address = await listen(server, options.port ?? 0);
  return {
    url: urlOf(address),
    events,
    emitter,
    failPutEvents: (count) => {
      faults = count;
    },
    get faultsLeft() {
      return faults;
    },
    close: () => closeServer(server),
  };
}

function invalid(entry: Entry): string | undefined {
  if (typeof entry !== 'object' || entry === null) return 'Entry must be an object.';
  if (typeof entry.Source !== 'string' || !entry.Source) return 'Source is required.';
  if (typeof entry.DetailType !== 'string' || !entry.DetailType) return 'DetailType is required.';
  if (typeof entry.Detail !== 'string') return 'Detail is required.';
  try {
    const detail: unknown = JSON.parse(entry.Detail);
    if (typeof detail !== 'object' || detail === null || Array.isArray(detail)) return 'Detail must be a JSON object.';
  } catch {
    return 'Detail is malformed.';
  }
  return undefined;
}

/** The fields a person looks for, whatever the detail's exact spelling. */
function describe(detail: Record<string, unknown>): string {
  const wanted = [
    'taskId',
    'TaskID',
    'dataId',
    'DataID',
    'ImageID',
    'VideoID',
    'submissionId',
    'status',
    'Status',
    'location',
    'resultLocation',
  ];
  const parts = wanted
    .filter((k) => typeof detail[k] === 'string' || typeof detail[k] === 'number')
    .map((k) => `${k}=${String(detail[k])}`);
  if (detail.result && typeof detail.result === 'object') {
    const loc = (detail.result as Record<string, unknown>).location;
    if (typeof loc === 'string') parts.push(`location=${loc}`);
  }
  return parts.length ? parts.join(' ') : `${Object.keys(detail).length} field(s)`;
}
