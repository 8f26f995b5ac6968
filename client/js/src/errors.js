// Exceptions of the jobmesh client: one class per error code the HTTP API
// sends ({"error": {"code", "message"}}), and the outcomes of wait().

export class JobmeshError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The broker refused a request: code is the API's error code, status the HTTP status. */
export class ApiError extends JobmeshError {
  constructor(code, message, status = 0) {
    super(code ? `${code}: ${message}` : message);
    this.code = code;
    this.status = status;
    this.detail = message;
  }
}
export class BadRequestError extends ApiError {}
export class InvalidNameError extends BadRequestError {}
export class UnauthorizedError extends ApiError {}
export class NotFoundError extends ApiError {}
export class ConflictError extends ApiError {}
export class TooLargeError extends ApiError {}
export class RateLimitedError extends ApiError {}
export class UnavailableError extends ApiError {}

/** No broker URL answered. */
export class ConnectionError extends JobmeshError {}

/** wait() ran out of time (the job may still finish later). */
export class TimeoutError extends JobmeshError {}

/** wait(): the job failed for good (dead-lettered). */
export class JobFailedError extends JobmeshError {
  constructor(jobId, error, job = {}) {
    super(`job ${jobId} failed: ${error}`);
    this.jobId = jobId;
    this.error = error;
    this.job = job;
  }
}

/** wait(): the job was cancelled. */
export class JobCancelledError extends JobmeshError {
  constructor(jobId, job = {}) {
    super(`job ${jobId} was cancelled`);
    this.jobId = jobId;
    this.job = job;
  }
}

/** Throw from a serve() handler to fail the job without retrying it. */
export class PermanentError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = 'PermanentError';
  }
}

const BY_STATUS = {
  400: BadRequestError, 401: UnauthorizedError, 403: UnauthorizedError, 404: NotFoundError,
  405: BadRequestError, 409: ConflictError, 413: TooLargeError, 415: BadRequestError,
  429: RateLimitedError, 503: UnavailableError,
};

/** The exception for an error reply: by its code when known, else by status. */
export function errorFor(status, body) {
  const err = body && typeof body === 'object' && body.error && typeof body.error === 'object'
    ? body.error : {};
  const code = err.code ? String(err.code) : '';
  const message = err.message ? String(err.message) : `HTTP ${status}`;
  let Cls;
  if (code === 'name_invalid' || code.endsWith('_name_invalid')) Cls = InvalidNameError;
  else if (['unauthorized', 'forbidden', 'token_invalid'].includes(code)) Cls = UnauthorizedError;
  else if (code.endsWith('not_found')) Cls = NotFoundError;
  else Cls = BY_STATUS[status] ?? ApiError;
  return new Cls(code || `http_${status}`, message, status);
}
