// Types of the jobmesh package (hand-written; the code is plain ESM).

export type JobState = 'pending' | 'delayed' | 'active' | 'completed' | 'failed' | 'cancelled';

export interface ClientOptions {
  /** Broker HTTP address, e.g. "http://127.0.0.1:7480". */
  url?: string;
  /** Several broker addresses, tried in order. */
  urls?: string[];
  /** Sent as "Authorization: Bearer TOKEN". */
  token?: string;
  /** Per-request timeout in ms (default 30000). */
  timeout?: number;
  /** A fetch implementation (default: globalThis.fetch). */
  fetch?: typeof fetch;
}

export interface JobOptions {
  /** -1000..1000, higher runs first. */
  priority?: number;
  maxAttempts?: number;
  delayMs?: number;
  timeoutMs?: number;
  /** 1-128 printable ASCII: a repeat within the broker's key window (24 h)
   * gets the first job's id. Without one the client makes a random key, so
   * its own resends never admit a job twice. */
  idempotencyKey?: string;
  /** Run no sooner than this (a Date or an RFC 3339 string); not with delayMs. */
  runAt?: Date | string;
  /** Any JSON value, handed to the handler as its JSON text (instead of payload). */
  data?: unknown;
  signal?: AbortSignal;
}

export interface JobSpec extends Omit<JobOptions, 'signal'> {
  type: string;
  /** Needed in submitBatch. */
  queue?: string;
  payload?: string | Uint8Array;
}

export interface Progress {
  done: number;
  total: number;
  message: string;
}

export interface JobInfo {
  id: string;
  queue: string;
  type: string;
  state: JobState;
  priority: number;
  attempt: number;
  max_attempts: number;
  created_us: number;
  updated_us: number;
  run_at_us: number | null;
  last_error: string | null;
  batch_id: string | null;
  progress: { done: number; total: number; message: string | null } | null;
  [key: string]: unknown;
}

export interface JobmeshEvent {
  /** SSE event name: job_state, job_progress, batch, worker_joined, worker_lost, snapshot, ... */
  kind: string;
  data: any;
  /** Sequence number to resume from (Last-Event-ID). */
  id: string | null;
}

export interface EventsOptions {
  job?: string | string[];
  batch?: string | string[];
  queue?: string | string[];
  worker?: string | string[];
  /** Raw topics, e.g. "job/42". */
  topics?: string[];
  /** Resume after this event id. */
  lastEventId?: string | null;
  signal?: AbortSignal;
  /** Reopen a dropped stream with Last-Event-ID (default true). */
  reconnect?: boolean;
  maxRetries?: number;
  /** Called each time the broker has subscribed the stream. */
  onOpen?: () => void;
}

export interface WaitOptions {
  /** ms; TimeoutError after it. */
  timeout?: number;
  signal?: AbortSignal;
  onProgress?: (progress: Progress) => void | Promise<void>;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export class Client {
  constructor(options?: ClientOptions);
  readonly urls: string[];
  submit(queue: string, type: string, payload?: string | Uint8Array | unknown, options?: JobOptions): Promise<string>;
  submitMany(queue: string, jobs: JobSpec[], options?: CallOptions): Promise<string[]>;
  submitBatch(jobs: (JobSpec & { queue: string })[], options?: CallOptions): Promise<{ id: string; jobIds: string[] }>;
  get(id: string, options?: CallOptions & { wait?: number }): Promise<JobInfo>;
  /** The result text once completed, else null (wait: long-poll seconds, <= 60); throws JobFailedError / JobCancelledError. */
  result(id: string, options?: CallOptions & { wait?: number }): Promise<string | null>;
  jobs(query?: CallOptions & { queue?: string; state?: JobState; batch?: string; limit?: number; cursor?: string }): Promise<any>;
  cancel(id: string, options?: CallOptions): Promise<any>;
  retry(id: string, options?: CallOptions): Promise<any>;
  batch(id: string, options?: CallOptions): Promise<any>;
  queues(options?: CallOptions): Promise<any[]>;
  workers(options?: CallOptions): Promise<any[]>;
  dead(queue: string, options?: CallOptions): Promise<any[]>;
  events(options?: EventsOptions): AsyncGenerator<JobmeshEvent, void, undefined>;
  /** Resolves with the result text; throws JobFailedError, JobCancelledError or TimeoutError. */
  wait(id: string, options?: WaitOptions): Promise<string | null>;
  /** Resolves with the batch's final status; onProgress gets each batch event. */
  waitBatch(id: string, options?: { timeout?: number; signal?: AbortSignal; onProgress?: (batch: any) => void | Promise<void> }): Promise<any>;
}

export interface ServeJob {
  id: string;
  type: string;
  queue: string;
  attempt: number;
  /** The payload as text (lossy when it is not UTF-8). */
  payload: string;
  /** The payload's bytes, exactly. */
  payloadBytes: Uint8Array;
  /** The payload parsed as JSON, or undefined when it is not JSON. */
  readonly data: any;
  /** Unix time in ms when the run timeout passes, or null. */
  deadline: number | null;
  timeoutMs: number;
  /** done of total (whole numbers), or a fraction 0..1. */
  progress(done: number, total?: number, message?: string): void;
}

export type ServeHandler = (job: ServeJob) => unknown | Promise<unknown>;

/** Jobs a serve() process asks to hold at once (its hello line). */
export const DEFAULT_PIPELINE: number;

/** A Node Readable (process.stdin by default). */
export interface ServeInput {
  on(event: 'data' | 'end' | 'error', listener: (arg?: any) => void): unknown;
  off(event: 'data' | 'end' | 'error', listener: (arg?: any) => void): unknown;
  setEncoding?(encoding: string): unknown;
  destroy?(): unknown;
}

/**
 * The handler end of jobmesh-worker --serve: resolves when the worker says
 * stop. Up to `pipeline` jobs (default DEFAULT_PIPELINE; 1: one at a time)
 * run at once: async handlers concurrently, answers carry the job id.
 * `batch: true` asks for several jobs a line and answers results several a
 * line (docs/serve-protocol.md); off by default (measured slower in Node so
 * far, see the README).
 */
export function serve(
  handlers: Record<string, ServeHandler>,
  options?: {
    input?: ServeInput;
    output?: { write(s: string): unknown };
    pipeline?: number;
    batch?: boolean;
  },
): Promise<void>;

export class SseParser {
  constructor(lastId?: string | null);
  lastId: string | null;
  line(line: string): JobmeshEvent | null;
}

export class JobmeshError extends Error {}
export class ApiError extends JobmeshError {
  constructor(code: string, message: string, status?: number);
  code: string;
  status: number;
  detail: string;
}
export class BadRequestError extends ApiError {}
export class InvalidNameError extends BadRequestError {}
export class UnauthorizedError extends ApiError {}
export class NotFoundError extends ApiError {}
export class ConflictError extends ApiError {}
export class TooLargeError extends ApiError {}
export class RateLimitedError extends ApiError {}
export class UnavailableError extends ApiError {}
export class ConnectionError extends JobmeshError {}
export class TimeoutError extends JobmeshError {}
export class JobFailedError extends JobmeshError {
  constructor(jobId: string, error: string, job?: JobInfo | object);
  jobId: string;
  error: string;
  job: JobInfo;
}
export class JobCancelledError extends JobmeshError {
  constructor(jobId: string, job?: JobInfo | object);
  jobId: string;
  job: JobInfo;
}
export class PermanentError extends Error {}
export function errorFor(status: number, body: unknown): ApiError;
