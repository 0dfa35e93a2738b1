/**
 * The smoke run's target when it is `npm start`: everything comes from the file the
 * local stack writes once it is ready (.local/stack.json), and result events from its
 * EventBridge stand-in (GET /__local/events).
 */
import { readFile } from 'node:fs/promises';
import { createS3Client } from '../storage/s3-client';
import type { ResultEvent, SmokeTarget } from './run';

export interface LocalStackFacts {
  s3Endpoint: string;
  s3AccessKeyId: string;
  s3SecretAccessKey: string;
  s3Region: string;
  bucket: string;
  apiUrl: string;
  apiKey: string;
  clientAccessKeyId: string;
  clientSecretAccessKey: string;
  callbackUrl: string;
}

export function localTarget(facts: LocalStackFacts): SmokeTarget {
  const apiUrl = facts.apiUrl.replace(/\/$/, '');
  const s3 = createS3Client({
    endpoint: facts.s3Endpoint,
    region: facts.s3Region,
    forcePathStyle: true,
    credentials: { accessKeyId: facts.s3AccessKeyId, secretAccessKey: facts.s3SecretAccessKey },
  });
  // The local EventBridge lists events as EventBridge delivers them (`detail-type`).
  const recorded = async (): Promise<Array<ResultEvent & { id: string }>> =>
    (
      (await (await fetch(`${apiUrl}/__local/events`)).json()) as Array<
        Omit<ResultEvent, 'detailType'> & { id: string; 'detail-type': string }
      >
    ).map(({ 'detail-type': detailType, ...e }) => ({ ...e, detailType }));
  return {
    name: 'local',
    ivaMode: 'sandbox',
    apiUrl,
    apiKey: facts.apiKey,
    credentials: { accessKeyId: facts.clientAccessKeyId, secretAccessKey: facts.clientSecretAccessKey },
    callbackUrl: facts.callbackUrl,
    bucket: facts.bucket,
    s3,
    async captureEvents() {
      const before = new Set((await recorded()).map((e) => e.id));
      return {
        events: async () => (await recorded()).filter((e) => !before.has(e.id)),
        stop: async () => undefined,
      };
    },
  };
}

/** Reads the facts `npm start` wrote (default .local/stack.json). */
export async function localTargetFromFile(path: string): Promise<SmokeTarget> {
  return localTarget(JSON.parse(await readFile(path, 'utf8')) as LocalStackFacts);
}
