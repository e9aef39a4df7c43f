/** Python 3's `repr()` of JSON values (kuryr's rendering of `binding:vif_details` and of command output). */

/**
 * Python 3's `repr()` of a JSON value, as kuryr renders `binding:vif_details` for bind scripts
 * (`str(dict)`) and command output in errors (`%r`): `{'port_filter': True, 'bridge_name': 'br-int'}`.
 *
 * Limits, inherent to JSON having been parsed already: a float with an integral value (`1.0`) renders as an
 * int (`1`), and object keys that look like array indices come first (JavaScript's property order).
 */
export function pythonRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'string') return pythonStr(value);
  if (typeof value === 'number') return pythonNumber(value);
  if (Array.isArray(value)) return `[${value.map(pythonRepr).join(', ')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    return `{${entries.map(([k, v]) => `${pythonStr(k)}: ${pythonRepr(v)}`).join(', ')}}`;
  }
  return pythonStr(String(value));
}

/** Characters Python's `str.isprintable()` rejects (other than the space, which is printable). */
const NOT_PRINTABLE = /[\p{C}\p{Z}]/u;

function pythonStr(s: string): string {
  // Python picks single quotes unless the text has a single quote and no double quote.
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    if (ch === quote || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch !== ' ' && NOT_PRINTABLE.test(ch)) {
      if (cp < 0x100) out += `\\x${cp.toString(16).padStart(2, '0')}`;
      else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
      else out += `\\U${cp.toString(16).padStart(8, '0')}`;
    } else out += ch;
  }
  return out + quote;
}

function pythonNumber(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  if (Number.isInteger(n) && Math.abs(n) < 1e21) return BigInt(n).toString();
  // float repr: the shortest round-trip digits (as JavaScript's), fixed notation for exponents -4..15.
  const [mantissa = '0', exp = '0'] = n.toExponential().split('e');
  const e = Number(exp);
  const negative = mantissa.startsWith('-');
  const digits = mantissa.replace(/^-/, '').replace('.', '');
  let body: string;
  if (e < -4 || e >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    body = `${m}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  } else if (e < 0) {
    body = `0.${'0'.repeat(-e - 1)}${digits}`;
  } else if (digits.length > e + 1) {
    body = `${digits.slice(0, e + 1)}.${digits.slice(e + 1)}`;
  } else {
    body = `${digits}${'0'.repeat(e + 1 - digits.length)}.0`;
  }
  return negative ? `-${body}` : body;
}
