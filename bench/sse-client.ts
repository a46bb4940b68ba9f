/**
 * A feed watcher on a raw TCP socket: one HTTP/1.1 GET, a chunked-body decoder and an SSE
 * framer, so a bench can hold a thousand feeds open at once from one process (Bun's fetch
 * queues requests past BUN_CONFIG_MAX_HTTP_REQUESTS, default 256, and a queued feed is not a
 * connected one). It keeps only what a check needs (each event's id, type and data length) and
 * never parses the data, so the watchers cost little CPU beside the server they measure.
 */

const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');

/** One event as a watcher saw it. */
export interface SeenEvent {
  id: string;
  type: string;
  /** Characters of its `data`: a cheap check that two watchers saw the same frame. */
  dataLength: number;
}

export class SseWatcher {
  readonly events: SeenEvent[] = [];
  status = 0;
  /** The response's head has come: the server answered this feed. */
  answered = false;
  /** The body ended (the server closed the feed); `closed`: the socket is gone, either way. */
  ended = false;
  closed = false;
  error: string | undefined;
  private socket: { end(): void; write(data: string): number } | undefined;
  private rest: Buffer = Buffer.alloc(0);
  private inBody = false;
  private chunked = false;
  /** Bytes left of the current chunk (chunked) or of the body (content-length); -1: unknown. */
  private left = -1;
  /** The CRLF after a chunk's data still to skip. */
  private skip = 0;
  private text = '';
  private readonly decoder = new TextDecoder();
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly path: string,
    private readonly headers: Record<string, string> = {},
  ) {}

  /** Connects and sends the request; resolves once the socket is open. */
  async open(): Promise<void> {
    const extra = Object.entries(this.headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    const request =
      `GET ${this.path} HTTP/1.1\r\nhost: ${this.host}:${this.port}\r\n` +
      `accept: text/event-stream\r\n${extra}\r\n`;
    this.socket = await Bun.connect({
      hostname: this.host,
      port: this.port,
      socket: {
        open: (socket) => {
          socket.write(request);
        },
        data: (_socket, data) => this.onData(data),
        close: () => this.onClose(),
        error: (_socket, error) => {
          this.error ??= String(error);
        },
        connectError: (_socket, error) => {
          this.error ??= String(error);
          this.onClose();
        },
      },
    });
  }

  /** Resolves when `done` holds (checked after every piece of data), or false at the deadline. */
  until(done: (watcher: SseWatcher) => boolean, timeoutMs: number): Promise<boolean> {
    if (done(this)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        resolve(false);
      }, timeoutMs);
      const check = () => {
        if (!done(this) && !this.closed) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(done(this));
      };
      this.waiters.add(check);
    });
  }

  close(): void {
    this.socket?.end();
  }

  private notify() {
    for (const waiter of [...this.waiters]) waiter();
  }

  private onClose() {
    this.closed = true;
    if (this.inBody && !this.chunked && this.left < 0) this.ended = true; // read-to-close body
    this.notify();
  }

  private onData(data: Buffer) {
    let buf = this.rest.length > 0 ? Buffer.concat([this.rest, data]) : data;
    this.rest = Buffer.alloc(0);
    if (!this.inBody) {
      const end = buf.indexOf(HEAD_END);
      if (end < 0) {
        this.rest = Buffer.from(buf);
        return;
      }
      this.readHead(buf.subarray(0, end).toString('latin1'));
      buf = buf.subarray(end + 4);
    }
    this.readBody(buf);
    this.notify();
  }

  private readHead(head: string) {
    const lines = head.split('\r\n');
    this.status = Number(lines[0]?.split(' ')[1] ?? 0);
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'transfer-encoding' && value.toLowerCase().includes('chunked')) {
        this.chunked = true;
      } else if (name === 'content-length') this.left = Number(value);
    }
    this.inBody = true;
    this.answered = true;
    if (!this.chunked && this.left === 0) this.ended = true;
  }

  private readBody(buf: Buffer) {
    if (!this.chunked) {
      const take = this.left < 0 ? buf : buf.subarray(0, this.left);
      if (this.left >= 0) this.left -= take.length;
      this.sse(take);
      if (this.left === 0) this.ended = true;
      return;
    }
    let pos = 0;
    while (pos < buf.length && !this.ended) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, buf.length - pos);
        this.skip -= n;
        pos += n;
        continue;
      }
      if (this.left <= 0) {
        const eol = buf.indexOf(CRLF, pos);
        if (eol < 0) {
          this.rest = Buffer.from(buf.subarray(pos));
          return;
        }
        const size = Number.parseInt(buf.subarray(pos, eol).toString('latin1'), 16);
        pos = eol + 2;
        if (size === 0) {
          this.ended = true; // the last chunk: the feed is over
          return;
        }
        this.left = size;
      }
      const n = Math.min(this.left, buf.length - pos);
      this.sse(buf.subarray(pos, pos + n));
      pos += n;
      this.left -= n;
      if (this.left === 0) this.skip = 2;
    }
  }

  /** Frames SSE messages out of the body's text: `id`, `event` and the data's length. */
  private sse(bytes: Uint8Array) {
    if (bytes.length === 0) return;
    this.text += this.decoder.decode(bytes, { stream: true });
    let start = 0;
    for (let end = this.text.indexOf('\n\n'); end >= 0; end = this.text.indexOf('\n\n', start)) {
      const block = this.text.slice(start, end);
      start = end + 2;
      if (block.startsWith(':')) continue; // a comment: `: connected`, `: keep-alive`
      let id = '';
      let type = '';
      let dataLength = -1;
      for (let at = 0; at < block.length; ) {
        const eol = block.indexOf('\n', at);
        const line = block.slice(at, eol < 0 ? block.length : eol);
        at = eol < 0 ? block.length : eol + 1;
        if (line.startsWith('id: ')) id = line.slice(4);
        else if (line.startsWith('event: ')) type = line.slice(7);
        else if (line.startsWith('data: ')) dataLength = line.length - 6;
      }
      if (dataLength >= 0) this.events.push({ id, type, dataLength });
    }
    this.text = this.text.slice(start);
  }
}
