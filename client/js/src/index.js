// jobmesh: the HTTP API client and the handler end of jobmesh-worker --serve.
export { Client } from './client.js';
export { serve, DEFAULT_PIPELINE } from './serve.js';
export { SseParser } from './sse.js';
export * from './errors.js';
