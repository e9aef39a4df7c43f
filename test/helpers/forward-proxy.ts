/**
 * A small recording forward proxy on loopback, as HTTP_PROXY/HTTPS_PROXY point at: plain-HTTP requests in
 * absolute form are forwarded, CONNECT opens a tunnel. It records each request line and its
 * `Proxy-Authorization`, and can refuse CONNECT with a status.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';

export interface ProxySeen {
  method: string;
  /** The request target as sent: an absolute URL, or `host:port` for CONNECT. */
  target: string;
  proxyAuthorization?: string;
}

export interface ForwardProxy {
  url: string;
  port: number;
  seen: ProxySeen[];
  /** Answer CONNECT with this status instead of tunnelling (e.g. 403). */
  refuseConnect: number | undefined;
  close(): Promise<void>;
}

export async function startForwardProxy(): Promise<ForwardProxy> {
  const sockets = new Set<net.Socket>();
  const state: ForwardProxy = {
    url: '',
    port: 0,
    seen: [],
    refuseConnect: undefined,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const record = (req: http.IncomingMessage) => {
    const auth = req.headers['proxy-authorization'];
    state.seen.push({
      method: req.method ?? '',
      target: req.url ?? '',
      ...(auth === undefined ? {} : { proxyAuthorization: auth }),
    });
  };
  const server = http.createServer((req, res) => {
    record(req);
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      res.writeHead(400).end('absolute URL expected');
      return;
    }
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    delete headers['proxy-connection'];
    const upstream = http.request(
      {
        host: target.hostname,
        port: target.port || 80,
        method: req.method,
        path: `${target.pathname}${target.search}`,
        headers,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502).end('upstream failed'));
    req.pipe(upstream);
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    record(req);
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    if (state.refuseConnect !== undefined) {
      client.end(`HTTP/1.1 ${state.refuseConnect} Refused\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    const [host, port] = (req.url ?? '').split(/:(?=\d+$)/);
    const upstream = net.connect(Number(port), (host ?? '').replace(/^\[(.*)\]$/, '$1'), () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  state.url = `http://127.0.0.1:${state.port}`;
  return state;
}
