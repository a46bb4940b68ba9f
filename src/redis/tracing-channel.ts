import diagnostics from 'node:diagnostics_channel';

/**
 * ioredis 6 wraps every command in `diagnostics_channel.tracingChannel('ioredis:command')`
 * unless the channel says `hasSubscribers === false`: it then copies and stringifies every
 * argument (payloads too) and chains an extra promise per command. Node's TracingChannel has that
 * getter; Bun 1.4's has not (undefined), so on Bun every command paid for tracing nobody listens
 * to. This gives TracingChannel the getter Node has (true when any of its five channels has a
 * subscriber), so a real subscriber (an APM agent) still sees every command.
 */
export function polyfillTracingChannelSubscribers(): void {
  if (typeof diagnostics.tracingChannel !== 'function') return;
  const proto = Object.getPrototypeOf(diagnostics.tracingChannel('agent-run:probe'));
  if (!proto || 'hasSubscribers' in proto) return;
  Object.defineProperty(proto, 'hasSubscribers', {
    configurable: true,
    get(this: Record<'start' | 'end' | 'asyncStart' | 'asyncEnd' | 'error', diagnostics.Channel>) {
      return (
        this.start.hasSubscribers ||
        this.end.hasSubscribers ||
        this.asyncStart.hasSubscribers ||
        this.asyncEnd.hasSubscribers ||
        this.error.hasSubscribers
      );
    },
  });
}

polyfillTracingChannelSubscribers();
