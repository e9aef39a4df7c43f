/**
 * An INI parser with oslo.config's rules, so that a `kuryr.conf` means here what it means to the original
 * (oslo_config/iniparser.py and cfg.ConfigParser; https://docs.openstack.org/oslo.config/latest/configuration/format.html):
 *
 * - `#` and `;` start a comment only as the first character of a line: `password = pa;ss#word` is `pa;ss#word`.
 * - `key = value` and `key: value` both assign; whichever of `=` and `:` comes first separates (`a = b:c` is
 *   `a` → `b:c`, `url: http://x` is `url` → `http://x`). Key and value are trimmed.
 * - A value wrapped in one pair of the same quotes (`"..."` or `'...'`) loses them.
 * - A line starting with a space or tab continues the value above it (joined with a newline); a blank line
 *   ends the value.
 * - Section names are case-insensitive except `DEFAULT`: `[Neutron]` is `[neutron]`, `[default]` is not `[DEFAULT]`.
 * - A section may appear more than once (its keys merge); the last assignment of a key wins.
 * - An assignment before any section header, a continuation line with nothing to continue, a section header
 *   without `]`, an empty section name, a line without `=` or `:`, and an empty key are errors (as in oslo).
 * Key names keep their case, as in oslo.config.
 */
import { fail } from '../errors.ts';

/** One value as read, with the line where its assignment starts. */
export interface IniValue {
  value: string;
  line: number;
}

/** Section name (normalized) → key → value. */
export type IniDocument = Map<string, Map<string, IniValue>>;

/** `DEFAULT` stays as is; every other section name is lower-cased (oslo.config `_normalize_group_name`). */
export function normalizeSection(name: string): string {
  return name === 'DEFAULT' ? name : name.toLowerCase();
}

/** Parses `text`; `source` names the file in error messages. */
export function parseIni(text: string, source: string): IniDocument {
  const doc: IniDocument = new Map();
  let section: Map<string, IniValue> | null = null;
  let key: string | null = null;
  let keyLine = 0;
  let value: string[] = [];
  const error = (lineno: number, message: string, line: string) =>
    fail.config(`${source}: at line ${lineno}, ${message}: ${JSON.stringify(line)}`);
  const flush = () => {
    if (key === null) return;
    if (section === null) throw error(keyLine, 'Section must be started before assignment', key);
    section.set(key, { value: value.join('\n'), line: keyLine });
    key = null;
    value = [];
  };

  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineno = i + 1;
    const line = (lines[i] as string).trimEnd();
    if (line === '') {
      flush();
      continue;
    }
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (key === null) throw error(lineno, 'Unexpected continuation line', line);
      value.push(line.trimStart());
      continue;
    }
    flush();
    if (line.startsWith('[')) {
      if (!line.endsWith(']')) throw error(lineno, 'Invalid section (must end with ])', line);
      if (line.length <= 2) throw error(lineno, 'Empty section name', line);
      const name = normalizeSection(line.slice(1, -1));
      section = doc.get(name) ?? new Map<string, IniValue>();
      doc.set(name, section);
    } else if (line.startsWith('#') || line.startsWith(';')) {
      // A comment.
    } else {
      const [k, v] = splitKeyValue(line, () => error(lineno, "No ':' or '=' found in assignment", line));
      if (k === '') throw error(lineno, 'Key cannot be empty', line);
      key = k;
      keyLine = lineno;
      value = [v];
    }
  }
  flush();
  return doc;
}

function splitKeyValue(line: string, invalid: () => Error): [string, string] {
  const colon = line.indexOf(':');
  const equal = line.indexOf('=');
  if (colon < 0 && equal < 0) throw invalid();
  const at = colon < 0 || (equal >= 0 && equal < colon) ? equal : colon;
  let value = line.slice(at + 1).trim();
  const first = value[0];
  if (value !== '' && (first === '"' || first === "'") && value.endsWith(first)) value = value.slice(1, -1);
  return [line.slice(0, at).trim(), value];
}
