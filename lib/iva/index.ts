export { createIvaClient, buildRequestJson, backoffDelay, DEFAULT_BUDGET_MS } from './client';
export * from './protocol';
export * from './errors';
export type * from './types';
export { frameWithFile, frameRequestOnly, randomBoundary, multipartContentType } from './multipart';
