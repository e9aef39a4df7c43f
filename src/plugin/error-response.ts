/**
 * Maps any error to libnetwork's error form: a non-2xx status and `{"Err": "<CODE>: <message>"}`.
 * The code (src/errors.ts) is stable and greppable; secrets never reach here (messages carry no credentials).
 */
import { BindingError } from '../binding/errors.ts';
import { KuryrError } from '../errors.ts';
import { NeutronError } from '../neutron/errors.ts';
import { InvalidAddressError } from '../util/ip.ts';

export interface ErrorReply {
  status: number;
  code: string;
  body: { Err: string };
}

/** The HTTP status for a Neutron error: client-side problems keep their meaning, the rest is a bad gateway. */
function neutronStatus(err: NeutronError): number {
  if (err.status === 400 || err.status === 404 || err.status === 409) return err.status;
  return 502;
}

/** Translates `err` into the reply Docker gets. */
export function errorReply(err: unknown): ErrorReply {
  let status: number;
  let code: string;
  let message: string;
  if (err instanceof KuryrError) {
    ({ status, code, message } = err);
  } else if (err instanceof NeutronError) {
    status = neutronStatus(err);
    code = 'KURYR_ERR_NEUTRON';
    // The call is named unless the message already does (a given-up retry names it).
    const call = err.call !== undefined && !err.message.includes(err.call) ? ` [${err.call}]` : '';
    message = `Neutron ${err.type} (HTTP ${err.status}): ${err.message}${call}${err.requestId ? ` [request ${err.requestId}]` : ''}`;
  } else if (err instanceof BindingError) {
    status = 500;
    code = err.code;
    message = err.message;
  } else if (err instanceof InvalidAddressError) {
    status = 400;
    code = 'KURYR_ERR_INVALID_VALUE';
    message = err.message;
  } else {
    status = 500;
    code = 'KURYR_ERR_INTERNAL';
    message = err instanceof Error ? err.message : String(err);
  }
  return { status, code, body: { Err: `${code}: ${message}` } };
}
