/**
 * A tiny HTTP tool server to try server tools with: `bun run example-tools`, then start the
 * service with TOOLS_FILE=examples/tools.json. It serves two tools the way the service calls
 * them: a POST of the model's arguments as JSON, answered with JSON the model reads.
 *   POST /time     {"timeZone": "Europe/Paris"}  → the time there
 *   POST /weather  {"city": "Paris"}             → a made-up forecast (no outside service)
 */
const port = Number(Bun.env.EXAMPLE_TOOLS_PORT ?? 4020);

const server = Bun.serve({
  port,
  hostname: '127.0.0.1',
  async fetch(request) {
    const path = new URL(request.url).pathname;
    if (request.method !== 'POST') return new Response('POST only', { status: 405 });
    const args = (await request.json().catch(() => ({}))) as Record<string, unknown>;
    console.log(path, request.headers.get('idempotency-key'), JSON.stringify(args));
    if (path === '/time') {
      const timeZone = typeof args.timeZone === 'string' ? args.timeZone : 'UTC';
      try {
        const now = new Date().toLocaleString('en-GB', {
          timeZone,
          dateStyle: 'full',
          timeStyle: 'long',
        });
        return Response.json({ timeZone, now });
      } catch {
        return Response.json({ error: `unknown time zone "${timeZone}"` }, { status: 400 });
      }
    }
    if (path === '/weather') {
      const city = String(args.city ?? '');
      // Made up but stable for a city, so a walkthrough shows the same answer twice.
      const seed = [...city].reduce((sum, char) => sum + char.charCodeAt(0), 0);
      return Response.json({
        city,
        temperatureC: (seed % 30) - 5,
        sky: ['sunny', 'cloudy', 'rain'][seed % 3],
      });
    }
    return new Response('no such tool', { status: 404 });
  },
});
console.log(`example tools on http://127.0.0.1:${server.port} (/time, /weather)`);
