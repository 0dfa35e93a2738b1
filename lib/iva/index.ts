export { createIvaClient, buildRequestJson, backoffDelay, IVA_VERSION, DEFAULT_BUDGET_MS } from './client';
export * from './errors';
export type * from './types';
export { frameWithFile, frameRequestOnly, randomBoundary, multipartContentType } from './multipart';
