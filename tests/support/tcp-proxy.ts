import type { Socket } from 'bun';

/**
 * A TCP proxy in front of a test server, to drop connections on purpose: `dropAll()` closes
 * every connection open now (a feed's, say), as a flaky network or a proxy restart would. New
 * connections go through as before.
 */
export function startTcpProxy(target: { hostname: string; port: number }) {
  const open = new Set<Socket<{ upstream?: Socket; pending: Uint8Array[] }>>();
  const server = Bun.listen<{ upstream?: Socket; pending: Uint8Array[] }>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      async open(client) {
        client.data = { pending: [] };
        open.add(client);
        client.data.upstream = await Bun.connect({
          ...target,
          socket: {
            data: (_upstream, chunk) => void client.write(chunk),
            close: () => void client.end(),
            error: () => void client.end(),
          },
        });
        for (const chunk of client.data.pending) client.data.upstream.write(chunk);
        client.data.pending = [];
      },
      data(client, chunk) {
        if (client.data.upstream) client.data.upstream.write(chunk);
        else client.data.pending.push(new Uint8Array(chunk));
      },
      close(client) {
        open.delete(client);
        client.data.upstream?.end();
      },
      error(client) {
        open.delete(client);
        client.data.upstream?.end();
      },
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    /** Closes every connection open now, both ways. */
    dropAll() {
      for (const client of open) {
        client.data.upstream?.terminate();
        client.terminate();
      }
      open.clear();
    },
    stop() {
      server.stop(true);
    },
  };
}
