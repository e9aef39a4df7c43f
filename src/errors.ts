/**
 * The catalogue of kuryr-ts errors. Each has a stable code (`KURYR_ERR_*`) and the HTTP status the plugin
 * answers with; the message may change, the code never does. docs/errors.md explains each code.
 */

/** Stable error codes and their HTTP status. */
export const ERROR_CODES = {
  /** The request body is not JSON, is empty, too large, or fails the schema. */
  KURYR_ERR_BAD_REQUEST: 400,
  /** A value in the request (CIDR, address, MAC, option) is invalid. */
  KURYR_ERR_INVALID_VALUE: 400,
  /** The referenced Docker network, endpoint or pool is unknown to the backend. */
  KURYR_ERR_NOT_FOUND: 404,
  /** The request conflicts with existing state (address or CIDR in use, shared-flag mismatch, duplicates). */
  KURYR_ERR_CONFLICT: 409,
  /** No address or subnet block is left in the pool. */
  KURYR_ERR_EXHAUSTED: 409,
  /** The request body exceeds the size limit. */
  KURYR_ERR_TOO_LARGE: 413,
  /** A host command (ip, a bind script) failed. */
  KURYR_ERR_BINDING: 500,
  /** The Neutron backend refused the request (its status and type are in the message). */
  KURYR_ERR_NEUTRON: 502,
  /** A bug or an unexpected condition inside the plugin. */
  KURYR_ERR_INTERNAL: 500,
  /** Unknown route. */
  KURYR_ERR_NO_SUCH_METHOD: 404,
  /** Not a POST. */
  KURYR_ERR_METHOD_NOT_ALLOWED: 405,
  /** Configuration or command-line error. */
  KURYR_ERR_CONFIG: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error with a stable code; `status` is the HTTP status the plugin answers with. */
export class KuryrError extends Error {
  override readonly name = 'KuryrError';
  readonly code: ErrorCode;
  readonly status: number;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; status?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options?.status ?? ERROR_CODES[code];
  }
}

/** Shorthand constructors for the common cases. */
export const fail = {
  badRequest: (message: string) => new KuryrError('KURYR_ERR_BAD_REQUEST', message),
  invalid: (message: string) => new KuryrError('KURYR_ERR_INVALID_VALUE', message),
  notFound: (message: string) => new KuryrError('KURYR_ERR_NOT_FOUND', message),
  conflict: (message: string, cause?: unknown) => new KuryrError('KURYR_ERR_CONFLICT', message, { cause }),
  exhausted: (message: string, cause?: unknown) => new KuryrError('KURYR_ERR_EXHAUSTED', message, { cause }),
  binding: (message: string, cause?: unknown) => new KuryrError('KURYR_ERR_BINDING', message, { cause }),
  config: (message: string) => new KuryrError('KURYR_ERR_CONFIG', message),
} as const;
