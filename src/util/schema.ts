/**
 * A small validator for decoded JSON: schemas that check a value, keep only the fields they declare, and give
 * the TypeScript type of what passed (`Infer<typeof schema>`), so a type is declared once, by its schema.
 *
 * In place of a general-purpose library on purpose: it is all the plugin needs (objects, records, arrays,
 * strings, numbers, booleans, refinements) and costs well under 1 MiB of memory, where zod cost 12-13 MiB
 * of the plugin's RSS (README, Dependencies). Failures are issues with a path (`Interface.Address`) and a message
 * written to be read by a person.
 */

export type PathSegment = string | number;

export interface Issue {
  path: PathSegment[];
  message: string;
}

export type SafeParseResult<T> = { success: true; data: T } | { success: false; issues: Issue[] };

/** Where a check is: the path of the value being checked and the issues found so far. */
export interface CheckContext {
  readonly path: PathSegment[];
  readonly issues: Issue[];
}

/** The type of what `schema` lets through. */
export type Infer<S> = S extends Schema<infer T> ? T : never;

export abstract class Schema<T> {
  /** Checks `input`; returns the value to use, or records issues in `ctx` (the returned value is then meaningless). */
  abstract check(input: unknown, ctx: CheckContext): T;

  /** The value, or every issue found (in order). */
  safeParse(input: unknown): SafeParseResult<T> {
    const ctx: CheckContext = { path: [], issues: [] };
    const data = this.check(input, ctx);
    return ctx.issues.length === 0 ? { success: true, data } : { success: false, issues: ctx.issues };
  }

  /** Also accepts a missing value (an absent object field). */
  optional(): Schema<T | undefined> {
    return new Maybe<T, undefined>(this, false);
  }

  /** Also accepts `null` and a missing value. */
  nullish(): Schema<T | null | undefined> {
    return new Maybe<T, null | undefined>(this, true);
  }

  /** Also accepts `null` (but not a missing value). */
  nullable(): Schema<T | null> {
    return new Maybe<T, null>(this, true, false);
  }

  /**
   * Checks the value further once everything else passed; `at` is where the issue is reported, relative to the
   * value (e.g. `['Gateway']` for a check of an object that is about its Gateway).
   */
  refine(predicate: (value: T) => boolean, message: string, at: PathSegment[] = []): Schema<T> {
    return new Refined(this, predicate, message, at);
  }
}

/** Adds an issue at the current path (plus `at`). */
function addIssue(ctx: CheckContext, message: string, at: PathSegment[] = []): void {
  ctx.issues.push({ path: [...ctx.path, ...at], message });
}

/** "a string", "null", "an array", ... for messages. */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  const type = typeof value;
  return type === 'object' || type === 'undefined' ? `an ${type}` : `a ${type}`;
}

/** Records that `input` is not of the `expected` type; returns `placeholder`, the value of a failed check. */
function wrongType<P>(ctx: CheckContext, expected: string, input: unknown, placeholder: P): P {
  addIssue(ctx, input === undefined ? `is required (${expected})` : `must be ${expected}, not ${kindOf(input)}`);
  return placeholder;
}

/** Runs `check` on `input` one level down, at `segment`. */
function checkAt<T>(schema: Schema<T>, input: unknown, segment: PathSegment, ctx: CheckContext): T {
  ctx.path.push(segment);
  try {
    return schema.check(input, ctx);
  } finally {
    ctx.path.pop();
  }
}

class Maybe<T, Extra extends null | undefined> extends Schema<T | Extra> {
  readonly inner: Schema<T>;
  readonly allowNull: boolean;
  readonly allowMissing: boolean;

  constructor(inner: Schema<T>, allowNull: boolean, allowMissing = true) {
    super();
    this.inner = inner;
    this.allowNull = allowNull;
    this.allowMissing = allowMissing;
  }

  check(input: unknown, ctx: CheckContext): T | Extra {
    if ((input === undefined && this.allowMissing) || (input === null && this.allowNull)) return input as Extra;
    return this.inner.check(input, ctx);
  }
}

class Refined<T> extends Schema<T> {
  readonly inner: Schema<T>;
  readonly predicate: (value: T) => boolean;
  readonly message: string;
  readonly at: PathSegment[];

  constructor(inner: Schema<T>, predicate: (value: T) => boolean, message: string, at: PathSegment[]) {
    super();
    this.inner = inner;
    this.predicate = predicate;
    this.message = message;
    this.at = at;
  }

  check(input: unknown, ctx: CheckContext): T {
    const before = ctx.issues.length;
    const value = this.inner.check(input, ctx);
    if (ctx.issues.length === before && !this.predicate(value)) addIssue(ctx, this.message, this.at);
    return value;
  }
}

/** A check of a string: undefined when it passes, else the message. */
type StringCheck = (s: string) => string | undefined;

export class StringSchema extends Schema<string> {
  readonly checks: readonly StringCheck[];

  constructor(checks: readonly StringCheck[] = []) {
    super();
    this.checks = checks;
  }

  check(input: unknown, ctx: CheckContext): string {
    if (typeof input !== 'string') return wrongType(ctx, 'a string', input, '');
    for (const check of this.checks) {
      const message = check(input);
      if (message !== undefined) {
        addIssue(ctx, message);
        break;
      }
    }
    return input;
  }

  /** The first failing check is reported, in the order they were added. */
  private with(check: StringCheck): StringSchema {
    return new StringSchema([...this.checks, check]);
  }

  min(length: number, message = `must be at least ${length} characters long`): StringSchema {
    return this.with((s) => (s.length >= length ? undefined : message));
  }

  max(length: number, message = `must be at most ${length} characters long`): StringSchema {
    return this.with((s) => (s.length <= length ? undefined : message));
  }

  regex(pattern: RegExp, message: string): StringSchema {
    return this.with((s) => (pattern.test(s) ? undefined : message));
  }

  /** Like `refine`, but chainable with the other string checks (the first failing one is reported). */
  satisfies(predicate: (s: string) => boolean, message: string): StringSchema {
    return this.with((s) => (predicate(s) ? undefined : message));
  }
}

class IntegerSchema extends Schema<number> {
  check(input: unknown, ctx: CheckContext): number {
    if (typeof input !== 'number') return wrongType(ctx, 'an integer', input, 0);
    if (!Number.isSafeInteger(input)) addIssue(ctx, 'must be an integer');
    return input;
  }
}

class BooleanSchema extends Schema<boolean> {
  check(input: unknown, ctx: CheckContext): boolean {
    if (typeof input !== 'boolean') return wrongType(ctx, 'true or false', input, false);
    return input;
  }
}

class UnknownSchema extends Schema<unknown> {
  check(input: unknown): unknown {
    return input;
  }
}

class PicklistSchema<const V extends string> extends Schema<V> {
  readonly values: readonly V[];

  constructor(values: readonly V[]) {
    super();
    this.values = values;
  }

  check(input: unknown, ctx: CheckContext): V {
    if (typeof input !== 'string' || !(this.values as readonly string[]).includes(input)) {
      addIssue(ctx, `must be one of ${this.values.map((v) => JSON.stringify(v)).join(', ')}`);
    }
    return input as V;
  }
}

/** A JSON object: not null, not an array. */
function isObject(input: unknown): input is Record<string, unknown> {
  return typeof input === 'object' && input !== null && !Array.isArray(input);
}

type Shape = Record<string, Schema<unknown>>;
type OptionalKeys<S extends Shape> = { [K in keyof S]: undefined extends Infer<S[K]> ? K : never }[keyof S];
type Flat<T> = { [K in keyof T]: T[K] } & {};
/** Fields whose schema accepts a missing value are optional (`?:`). */
export type ObjectOutput<S extends Shape> = Flat<
  { [K in Exclude<keyof S, OptionalKeys<S>>]: Infer<S[K]> } & { [K in OptionalKeys<S>]?: Infer<S[K]> }
>;

class ObjectSchema<S extends Shape> extends Schema<ObjectOutput<S>> {
  readonly shape: S;

  constructor(shape: S) {
    super();
    this.shape = shape;
  }

  /** Unknown fields are dropped; a field that is absent (or not an own field) stays absent. */
  check(input: unknown, ctx: CheckContext): ObjectOutput<S> {
    const out: Record<string, unknown> = {};
    if (!isObject(input)) return wrongType(ctx, 'an object', input, out as ObjectOutput<S>);
    for (const key of Object.keys(this.shape)) {
      const value = Object.hasOwn(input, key) ? input[key] : undefined;
      const checked = checkAt(this.shape[key] as Schema<unknown>, value, key, ctx);
      if (checked !== undefined) out[key] = checked;
    }
    return out as ObjectOutput<S>;
  }
}

class RecordSchema<V> extends Schema<Record<string, V>> {
  readonly key: Schema<string>;
  readonly value: Schema<V>;

  constructor(key: Schema<string>, value: Schema<V>) {
    super();
    this.key = key;
    this.value = value;
  }

  /** A new object with every own key but `__proto__` (never copied: it would set the prototype). */
  check(input: unknown, ctx: CheckContext): Record<string, V> {
    const out: Record<string, V> = {};
    if (!isObject(input)) return wrongType(ctx, 'an object', input, out);
    for (const key of Object.keys(input)) {
      if (key === '__proto__') continue;
      const before = ctx.issues.length;
      checkAt(this.key, key, key, ctx);
      for (let i = before; i < ctx.issues.length; i++) {
        const issue = ctx.issues[i] as Issue;
        issue.message = `key ${issue.message}`;
      }
      out[key] = checkAt(this.value, input[key], key, ctx);
    }
    return out;
  }
}

class ArraySchema<T> extends Schema<T[]> {
  readonly item: Schema<T>;
  readonly maxItems: number;

  constructor(item: Schema<T>, maxItems = Number.POSITIVE_INFINITY) {
    super();
    this.item = item;
    this.maxItems = maxItems;
  }

  check(input: unknown, ctx: CheckContext): T[] {
    if (!Array.isArray(input)) return wrongType(ctx, 'an array', input, []);
    if (input.length > this.maxItems) {
      addIssue(ctx, `must have at most ${this.maxItems} items`);
      return [];
    }
    return input.map((item, i) => checkAt(this.item, item, i, ctx));
  }

  max(items: number): ArraySchema<T> {
    return new ArraySchema(this.item, items);
  }
}

export const string = (): StringSchema => new StringSchema();
/** A safe integer (JSON number without a fraction). */
export const integer = (): Schema<number> => new IntegerSchema();
export const boolean = (): Schema<boolean> => new BooleanSchema();
/** Anything, missing included. */
export const unknown = (): Schema<unknown> => new UnknownSchema();
export const picklist = <const V extends string>(values: readonly V[]): Schema<V> => new PicklistSchema(values);
export const object = <S extends Shape>(shape: S): Schema<ObjectOutput<S>> => new ObjectSchema(shape);
export const record = <V>(key: Schema<string>, value: Schema<V>): Schema<Record<string, V>> =>
  new RecordSchema(key, value);
export const array = <T>(item: Schema<T>): ArraySchema<T> => new ArraySchema(item);

/** The issues as one readable line: `Interface.Address: must be empty or a CIDR ...; ...` (at most `max`). */
export function describeIssues(issues: readonly Issue[], max = 5): string {
  return issues
    .slice(0, max)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : 'body'}: ${issue.message}`)
    .join('; ');
}
