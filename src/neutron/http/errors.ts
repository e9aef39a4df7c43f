/**
 * Neutron error answers → `NeutronError`. The status code is authoritative; the type and message come from
 * whatever body the answer has: Neutron's `{"NeutronError": {...}}`, Keystone middleware's `{"error": {...}}`,
 * a web-framework JSON error (`{"message", "code", "title"}`), or HTML/text from Neutron or a proxy.
 */
import { NeutronError } from '../errors.ts';
import type { TransportResponse } from './transport.ts';

/**
 * node:http as CommonJS: an ESM import of it builds its namespace, whose lazy getters load undici, http2, zlib and
 * tls (about 10 MiB of RSS in the plugin).
 */
const { STATUS_CODES } = process.getBuiltinModule('node:http');

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const nonEmpty = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v : undefined);

/** webob's exception class name for a status (`404` → `HTTPNotFound`), the type of non-Neutron errors. */
export function webobTypeOf(status: number): string {
  const phrase = STATUS_CODES[status];
  if (phrase === undefined) return `HTTP${status}`;
  // Node says "Payload Too Large" where webob still says "Request Entity Too Large".
  if (status === 413) return 'HTTPRequestEntityTooLarge';
  return `HTTP${phrase.replace(/[^A-Za-z]/g, '')}`;
}

/** Plain text of an HTML/web-framework message: tags dropped, entities of note decoded, blanks collapsed. */
function plainText(text: string): string {
  return text
    .replace(/<(script|style)[^>]*>[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<br\s*\/?>/gi, ' ')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Type and message from a JSON error body, when it has a known shape. */
function fromJson(doc: unknown, status: number): { type: string; message: string } | undefined {
  if (!isObject(doc)) return undefined;
  const ne = doc.NeutronError;
  if (isObject(ne)) {
    return {
      type: nonEmpty(ne.type) ?? webobTypeOf(status),
      message: nonEmpty(ne.message) ?? nonEmpty(ne.detail) ?? '',
    };
  }
  if (typeof ne === 'string') return { type: webobTypeOf(status), message: ne };
  if (isObject(doc.error)) {
    // Keystone middleware (401) and other OpenStack services' `{"error": {"code", "title", "message"}}`.
    const title = nonEmpty(doc.error.title);
    return {
      type: title ? title.replace(/[^A-Za-z]/g, '') : webobTypeOf(status),
      message: plainText(nonEmpty(doc.error.message) ?? title ?? ''),
    };
  }
  if (nonEmpty(doc.message) !== undefined || nonEmpty(doc.title) !== undefined) {
    // webob/pecan without the NeutronError wrapper: {"message": "...<br /><br />...", "code": "404 Not Found", "title": "Not Found"}.
    const title = nonEmpty(doc.title);
    return {
      type: title ? `HTTP${title.replace(/[^A-Za-z]/g, '')}` : webobTypeOf(status),
      message: plainText(nonEmpty(doc.message) ?? title ?? ''),
    };
  }
  return undefined;
}

/** Title (or failing that, the text) of an HTML page, or the start of a plain-text body. */
function fromText(body: string): string {
  const title = /<title[^>]*>([\s\S]*?)<\/title>/i.exec(body)?.[1];
  const h1 = /<h1[^>]*>([\s\S]*?)<\/h1>/i.exec(body)?.[1];
  const bodyText = /<body[^>]*>([\s\S]*?)(<\/body>|$)/i.exec(body)?.[1];
  const text = plainText(bodyText ?? body);
  const heading = plainText(h1 ?? title ?? '');
  const detail = heading && text.startsWith(heading) ? text : [heading, text].filter(Boolean).join(': ');
  return detail.slice(0, 300);
}

/** The `NeutronError` for an error answer (status ≥ 400). `call` names the request for a give-up note. */
export function neutronErrorFromResponse(res: TransportResponse, call: string): NeutronError {
  const header = res.headers['x-openstack-request-id'];
  const requestId = Array.isArray(header) ? header[0] : header;
  let parsed: { type: string; message: string } | undefined;
  const text = res.body.trim();
  if (text.startsWith('{')) {
    try {
      parsed = fromJson(JSON.parse(text), res.status);
    } catch {
      parsed = undefined;
    }
  }
  parsed ??= { type: webobTypeOf(res.status), message: fromText(text) };
  let message = parsed.message || `${res.status} ${STATUS_CODES[res.status] ?? 'error'}`;
  if (res.gaveUp !== undefined) message += ` [${call}: gave up: ${res.gaveUp}]`;
  return new NeutronError(res.status, parsed.type, message, requestId, call);
}
