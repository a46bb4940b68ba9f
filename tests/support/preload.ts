import { redisAnswers } from '../../harness/redis-probe';
import { REDIS_URL } from './redis';

/**
 * RUN_REDIS_TESTS=true: the Redis tests must run (CI). =false: they are skipped.
 * Unset: they run when a Redis answers at REDIS_URL, and are skipped with a notice otherwise.
 */
const wanted = process.env.RUN_REDIS_TESTS;
const answers = wanted === 'false' ? false : await redisAnswers(REDIS_URL);
if (wanted === 'true' && !answers) {
  throw new Error(`RUN_REDIS_TESTS=true but no Redis answers at ${REDIS_URL}`);
}
(globalThis as { __redisTests?: boolean }).__redisTests = answers;
if (!answers) {
  console.warn(
    `\n⚠ Redis integration tests SKIPPED: ${wanted === 'false' ? 'RUN_REDIS_TESTS=false' : `no Redis at ${REDIS_URL}`}.` +
      '\n  Only the unit tests run. Start Redis (`bun run redis:up` or `redis-server`) and run' +
      ' `RUN_REDIS_TESTS=true bun run test` for the whole suite.\n',
  );
}
