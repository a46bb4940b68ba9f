/** What the HTTP tool test server saw of one call. */
export interface RecordedCall {
  path: string;
  headers: Record<string, string>;
  body: string;
}

/**
 * An HTTP tool server on 127.0.0.1 for tests, recording every call. By path: `/echo` answers
 * `{"received": <the body>}`; `/fail` a 500 with a body; `/hang` never answers (`aborted` counts
 * the calls whose client went away); `/big` 1 MB of text; `/redirect` a 302 to `/echo`.
 */
export function startHttpToolServer() {
  const calls: RecordedCall[] = [];
  let aborted = 0;
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    idleTimeout: 0,
    async fetch(request) {
      const path = new URL(request.url).pathname;
      const body = await request.text();
      calls.push({ path, headers: Object.fromEntries(request.headers), body });
      switch (path) {
        case '/echo':
          return Response.json({ received: JSON.parse(body) });
        case '/fail':
          return new Response(`database on fire ${'!'.repeat(5000)}`, { status: 500 });
        case '/hang':
          return new Promise<Response>((resolve) => {
            request.signal.addEventListener('abort', () => {
              aborted += 1;
              resolve(new Response('too late'));
            });
          });
        case '/big':
          return new Response('x'.repeat(1024 * 1024));
        case '/redirect':
          return new Response(null, { status: 302, headers: { location: '/echo' } });
        default:
          return new Response('no such tool', { status: 404 });
      }
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    calls,
    get aborted() {
      return aborted;
    },
    stop: () => server.stop(true),
  };
}

export type HttpToolServer = ReturnType<typeof startHttpToolServer>;
