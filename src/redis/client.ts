import './tracing-channel';
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../config';
import { redactUrl } from '../redact';

/** A connection to one Redis or to a Redis Cluster: both speak the commands we use. */
export type RedisClient = Redis | Cluster;

/** Where the connections go: REDIS_URL, or REDIS_CLUSTER_NODES with REDIS_URL's credentials. */
export type RedisTarget = Pick<Config['redis'], 'url' | 'clusterNodes'>;

/**
 * The one factory for every Redis connection the service makes: our own client, the queue's, the
 * worker's, the stream consumer's and the feed reader's. Without cluster nodes it is
 * `new Redis(url, options)`. With them it is an ioredis `Cluster` over the seed nodes, with
 * REDIS_URL's username, password and TLS (`rediss:`) for every node; the options that a Cluster
 * takes at its own level (`enableOfflineQueue`, `lazyConnect`, `retryStrategy` as
 * `clusterRetryStrategy`) go there, the rest to each node. Every key must carry the hash tag of
 * `clusterKeys` (cluster-keys.ts), so that one slot holds them all.
 */
export function createRedisClient(target: RedisTarget, options: RedisOptions = {}): RedisClient {
  if (!target.clusterNodes) return new Redis(target.url, options);
  const { enableOfflineQueue, lazyConnect, retryStrategy, ...nodeOptions } = options;
  const clusterOptions: ClusterOptions = {
    redisOptions: { ...credentialsOf(target.url), ...nodeOptions },
  };
  if (enableOfflineQueue !== undefined) clusterOptions.enableOfflineQueue = enableOfflineQueue;
  if (lazyConnect !== undefined) clusterOptions.lazyConnect = lazyConnect;
  if (retryStrategy !== undefined) clusterOptions.clusterRetryStrategy = retryStrategy;
  return new Cluster(
    target.clusterNodes.map((node) => ({ ...node })),
    clusterOptions,
  );
}

/** What REDIS_URL says about authentication and TLS; its host, port and database do not apply. */
function credentialsOf(url: string): Pick<RedisOptions, 'username' | 'password' | 'tls'> {
  const parsed = new URL(url);
  return {
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/** Where Redis is, for logs: the URL without its password, or the cluster's seed nodes. */
export function describeRedisTarget(target: RedisTarget): string {
  if (target.clusterNodes) {
    return `cluster ${target.clusterNodes.map((node) => `${node.host}:${node.port}`).join(',')}`;
  }
  return redactUrl(target.url);
}

/**
 * Whether an error only says Redis is not reachable (refused, reset, timed out, a Cluster with
 * no node answering): reported once by our own client, so other listeners drop these.
 */
export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: string })?.code;
  const message = (error as Error)?.message ?? '';
  return (
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === 'ETIMEDOUT' ||
    // The last three: an ioredis Cluster with no node answering.
    /connect|Connection is closed|ECONNREFUSED|startup nodes|slots cache|Cluster isn't ready/i.test(
      message,
    )
  );
}
