// Types of the jobmesh package (hand-written; the code is plain ESM).

export type JobState = 'pending' | 'delayed' | 'active' | 'completed' | 'failed' | 'cancelled';

export interface ClientOptions {
  /**
   * Broker HTTP address, e.g. "http://127.0.0.1:7480"; or several, as an
   * array or comma-separated ("http://b1:7480,http://b2:7480"): with high
   * availability the client finds the leader among them, follows a
   * standby's 503 not_leader to the leader it names (leader_http), passes
   * over an address that does not connect, and waits out a failover within
   * each call's timeout.
   */
  url?: string | string[];
  /** Several broker addresses (the same as url given an array). */
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
  /** Fair tenants: the job's group (1-64 of A-Z a-z 0-9 . _ -); groups with ready jobs take turns. */
  group?: string;
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
  /** Only these kinds (job_state, job_progress, batch, worker_joined, worker_lost); default every kind. */
  kinds?: string[];
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

/** At most jobs starts per periodMs, evenly spaced. */
export interface Rate {
  jobs: number;
  period_ms?: number;
  periodMs?: number;
}

/** A settings change: only what is given changes (camelCase or snake_case). */
export interface QueueSettingsChange {
  paused?: boolean;
  /** Active jobs at once; 0: no limit. */
  maxActive?: number;
  /** null: no rate limit. */
  rate?: Rate | null;
  maxAttempts?: number;
  /** Retention of completed, failed and cancelled jobs alike; null: no count limit. */
  keepFinished?: number | null;
  keepFinishedAgeMs?: number;
  keyWindowMs?: number;
  /** Active jobs per group across all workers; 0: no limit. */
  groupLimit?: number;
  keepCompleted?: number | null;
  keepCompletedAgeMs?: number;
  keepFailed?: number | null;
  keepFailedAgeMs?: number;
  keepCancelled?: number | null;
  keepCancelledAgeMs?: number;
  [snakeCase: string]: unknown;
}

/** A queue's settings as the broker answers them. */
export interface QueueSettings {
  queue: string;
  paused: boolean;
  max_active: number;
  rate: { jobs: number; period_ms: number } | null;
  max_attempts: number;
  keep_finished: number | null;
  keep_finished_age_ms: number;
  key_window_ms: number;
  group_limit: number;
  keep_completed: number | null;
  keep_completed_age_ms: number;
  keep_failed: number | null;
  keep_failed_age_ms: number;
  keep_cancelled: number | null;
  keep_cancelled_age_ms: number;
  [key: string]: unknown;
}

export interface DeadRemoved {
  queue: string;
  removed: number;
  ids: string[];
}

export interface DeadRevived {
  queue: string;
  revived: number;
  ids: string[];
}

export class Client {
  constructor(options?: ClientOptions);
  readonly urls: string[];
  submit(queue: string, type: string, payload?: string | Uint8Array | unknown, options?: JobOptions): Promise<string>;
  /** Submits one job and waits for it in one request; resolves and rejects as wait() (timeout: ms, default 60,000). */
  submitAndWait(queue: string, type: string, payload?: string | Uint8Array | unknown, options?: JobOptions & { timeout?: number }): Promise<string | null>;
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
  /** Removes one dead-lettered job (id), or every one of the queue (no id; at most 10,000 a call). Admin role. */
  removeDead(queue: string, id?: string | null, options?: CallOptions): Promise<DeadRemoved>;
  /** Every dead-lettered job of the queue back to pending (at most 10,000 a call). */
  retryDead(queue: string, options?: CallOptions): Promise<DeadRevived>;
  /** Admin role. */
  queueSettings(queue: string, options?: CallOptions): Promise<QueueSettings>;
  /** Journaled; admin role. Resolves with all the queue's settings. */
  setQueueSettings(queue: string, changes: QueueSettingsChange, options?: CallOptions): Promise<QueueSettings>;
  pauseQueue(queue: string, options?: CallOptions): Promise<QueueSettings>;
  resumeQueue(queue: string, options?: CallOptions): Promise<QueueSettings>;
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
 * `batch` (default true) asks for several jobs a line and answers results
 * several a line (docs/serve-protocol.md); false asks for one job a line.
 * Without `input` and `output` it reads and writes the process's stdin and
 * stdout (their descriptors directly when they are pipes).
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
