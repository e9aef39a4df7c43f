/**
 * Secrets out of logs and error texts. Two tools:
 *
 * - `redactSecrets(value)`: a copy of a log record in which the value of every key that names a credential
 *   (`password`, `token`, `X-Auth-Token`, `application_credential_secret`, `SERVICE_PASSWORD`, ...) is
 *   `[redacted]`, at any depth, in objects, arrays and errors. The input is never modified; parts without
 *   secrets are shared, not copied.
 * - `redactText(text)`: free text (a program's output) with `key=value` / `key: value` credentials, URL
 *   passwords, `Authorization` / `X-Auth-Token` header values and Keystone (Fernet) tokens replaced.
 */

export const REDACTED = '[redacted]';

/**
 * Keys whose value is a credential (case-insensitive): names ending in `password`, `passwd`, `secret`, `token`,
 * `credential`, `api_key`/`private_key`, or `authorization`/`cookie` (`OS_PASSWORD`, `x-auth-token`, ...); not
 * `passwordLength` or `tokensSeen`.
 */
const SECRET_KEY = /(?:pass(?:word|wd)|secret|token|credentials?|(?:api|private)[-_]?key|authorization|cookie)$/i;

/** True when a field of this name holds a credential. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** `value` with every credential replaced by `[redacted]` (see the module comment). */
export function redactSecrets<T>(value: T): T {
  return redact(value, new WeakSet()) as T;
}

function redact(value: unknown, ancestors: WeakSet<object>): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (ancestors.has(value)) return value; // a cycle: already being handled further up
  const isArray = Array.isArray(value);
  const isError = value instanceof Error;
  const proto: unknown = Object.getPrototypeOf(value);
  // Buffers, dates, maps and other class instances are written as they are: they have no credential fields.
  if (!isArray && !isError && proto !== Object.prototype && proto !== null) return value;
  ancestors.add(value);
  try {
    if (isArray) {
      let copy: unknown[] | undefined;
      value.forEach((item, i) => {
        const r = redact(item, ancestors);
        if (r !== item) {
          copy ??= [...value];
          copy[i] = r;
        }
      });
      return copy ?? value;
    }
    const record = value as Record<string, unknown>;
    let changes: Record<string, unknown> | undefined;
    const keys = isError ? [...Object.keys(record), 'cause'] : Object.keys(record);
    for (const key of keys) {
      const item = record[key];
      if (item === undefined || item === null) continue;
      const r = isSecretKey(key) && item !== '' ? REDACTED : redact(item, ancestors);
      if (r !== item) {
        changes ??= {};
        changes[key] = r;
      }
    }
    if (changes === undefined) return value;
    if (!isError) return { ...record, ...changes };
    // An error keeps its class, message and stack (what pino's error serializer reads).
    const err = value as Error;
    const copy = Object.assign(Object.create(Object.getPrototypeOf(err) as object) as Error, record, changes);
    Object.defineProperty(copy, 'message', { value: err.message, enumerable: false, writable: true });
    Object.defineProperty(copy, 'stack', { value: err.stack, enumerable: false, writable: true });
    return copy;
  } finally {
    ancestors.delete(value);
  }
}

// Every repetition is bounded: program output can be megabytes, and an unbounded `[\w]*` before a literal makes
// the search quadratic in the length of a long word.
/** `password=…`, `OS_PASSWORD: …`, `"token": "…"` (the key is kept, the value replaced). */
const KEY_VALUE =
  /(["']?[\w.-]{0,64}(?:pass(?:word|wd)|secret|token|credential)[\w.-]{0,64}["']?\s{0,8}[:=]\s{0,8})("[^"\n]{0,4096}"|'[^'\n]{0,4096}'|[^\s"',;&]{1,4096})/gi;
/** `scheme://user:password@host`. */
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]{0,31}:\/\/[^\s:/@]{1,256}:)[^\s@/]{1,4096}@/gi;
/** `Authorization: Bearer …`, `X-Auth-Token: …` header lines. */
const HEADER = /(\b(?:authorization|x-auth-token|x-subject-token)\s*:\s*)(?:(?:bearer|basic)\s+)?\S+/gi;
/** Keystone Fernet tokens (`gAAAAA…`), wherever they stand. */
const FERNET = /\bgAAAAA[A-Za-z0-9_-]{20,}=*/g;

/** `text` with the credentials it shows replaced by `[redacted]` (see the module comment). */
export function redactText(text: string): string {
  return text
    .replace(HEADER, `$1${REDACTED}`)
    .replace(URL_PASSWORD, `$1${REDACTED}@`)
    .replace(KEY_VALUE, `$1${REDACTED}`)
    .replace(FERNET, REDACTED);
}
