import { describe, expect, test } from 'bun:test';
import { Cluster, Redis } from 'ioredis';
import { createRedisClient, describeRedisTarget } from '../../src/redis/client';

// lazyConnect everywhere: these only look at how the clients are built, nothing connects.
describe('createRedisClient', () => {
  test('without cluster nodes: one Redis at REDIS_URL, the options as given', () => {
    const client = createRedisClient(
      { url: 'redis://u:p@10.0.0.9:6380/2', clusterNodes: null },
      { lazyConnect: true, enableOfflineQueue: false },
    );
    expect(client).toBeInstanceOf(Redis);
    expect((client as Redis).options).toMatchObject({
      host: '10.0.0.9',
      port: 6380,
      db: 2,
      username: 'u',
      password: 'p',
      enableOfflineQueue: false,
    });
    client.disconnect();
  });

  test('with cluster nodes: a Cluster; REDIS_URL gives only credentials and TLS', () => {
    const retry = (times: number) => times * 10;
    const client = createRedisClient(
      {
        url: 'rediss://app:s%40cret@ignored:6379',
        clusterNodes: [
          { host: '10.0.0.1', port: 7000 },
          { host: '10.0.0.2', port: 7001 },
        ],
      },
      {
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        retryStrategy: retry,
      },
    );
    expect(client).toBeInstanceOf(Cluster);
    const { options } = client as Cluster;
    // What a Cluster takes at its own level is there, not on the nodes.
    expect(options.enableOfflineQueue).toBe(false);
    expect(options.lazyConnect).toBe(true);
    expect(options.clusterRetryStrategy).toBe(retry);
    expect(options.redisOptions).toEqual({
      username: 'app',
      password: 's@cret',
      tls: {},
      maxRetriesPerRequest: 1,
    });
    client.disconnect();
  });

  test('logs name the target without its password', () => {
    expect(describeRedisTarget({ url: 'redis://u:secret@h:6379', clusterNodes: null })).toBe(
      'redis://u:***@h:6379',
    );
    expect(
      describeRedisTarget({
        url: 'redis://u:secret@h:6379',
        clusterNodes: [
          { host: 'a', port: 1 },
          { host: 'b', port: 2 },
        ],
      }),
    ).toBe('cluster a:1,b:2');
  });
});
