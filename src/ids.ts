/**
 * Two kinds of id, each a prefix + 24 lowercase alphanumerics.
 *
 * Thread ids (and tool call ids) are Cuid2s: a random letter, then base-36 digits of
 * SHA3-512(time + salt + counter + fingerprint). This is the construction of
 * @paralleldrive/cuid2, computed with Bun's native SHA3: the library hashes in JavaScript
 * (@noble/hashes) and converts the digest to base 36 a byte at a time through BigInt, many times
 * slower on Bun (bench/README.md has the figures). `tests/unit/ids.test.ts` checks the output
 * with the library's own `isCuid`.
 *
 * Message, run and event ids are time-ordered (see `orderedId`): the contract asks only for
 * their form, and ids that grow with time append to the store's B-trees instead of inserting
 * at random pages, which is most of what a random key costs an insert and its commit.
 */
const LENGTH = 24;
/** The library's bound for the counter's random start (~22k hosts before a 50 % clash). */
const INITIAL_COUNT_MAX = 476_782_367;

const random = new Uint32Array(64);
let randomLeft = 0;
/** A uniform integer below `n`, from a refilled block of CSPRNG output. */
function randomBelow(n: number): number {
  if (randomLeft === 0) {
    crypto.getRandomValues(random);
    randomLeft = random.length;
  }
  return (random[--randomLeft] as number) % n;
}

function entropy(length: number): string {
  let out = '';
  while (out.length < length) out += randomBelow(36).toString(36);
  return out;
}

/** The salt: as many random bytes as the library's 24 base-36 characters carry, and more. */
const salt = new Uint8Array(16);
let counter = randomBelow(INITIAL_COUNT_MAX);
/** Sets this process apart from others that start in the same millisecond. */
const fingerprint = `${process.pid.toString(36)}${entropy(32)}`;

function cuid(): string {
  const hasher = new Bun.CryptoHasher('sha3-512');
  hasher.update(Date.now().toString(36));
  hasher.update(crypto.getRandomValues(salt));
  hasher.update((counter++).toString(36));
  hasher.update(fingerprint);
  // 192 bits of the digest: 23 base-36 digits need 119, and the surplus keeps them unbiased.
  const digits = BigInt(`0x${hasher.digest('hex').slice(0, 48)}`).toString(36);
  return (
    String.fromCharCode(97 + randomBelow(26)) + digits.padStart(LENGTH, '0').slice(-(LENGTH - 1))
  );
}

/** 9 base-36 digits of Unix milliseconds: enough until the year 5188. */
const TIME_DIGITS = 9;
/** The random part: 7 high digits (started below half their range, so carries never overflow) and 8 low. */
const HIGH_DIGITS = 7;
const LOW_DIGITS = 8;
const LOW_RANGE = 36 ** LOW_DIGITS;
let lastMs = 0;
let high = 0;
let low = 0;

/** A uniform integer below `n` < 2^53, from two 32-bit draws. */
const randomUpTo = (n: number) =>
  Math.floor(((randomBelow(2 ** 21) * 2 ** 32 + randomBelow(2 ** 32)) / 2 ** 53) * n);

/**
 * 24 base-36 digits: the time in milliseconds, then 15 random digits (about 76 random bits). Within one
 * millisecond of one process the random part grows by a random step (1 to 2^32) instead of
 * being drawn again, so the ids a process makes sort in the order it made them, and one id
 * does not tell the next. A clock that steps back is held at the last time seen.
 */
function orderedId(): string {
  const now = Date.now();
  if (now > lastMs) {
    lastMs = now;
    high = randomUpTo(36 ** HIGH_DIGITS / 2);
    low = randomUpTo(LOW_RANGE);
  } else {
    low += 1 + randomBelow(2 ** 32);
    if (low >= LOW_RANGE) {
      low -= LOW_RANGE;
      high += 1;
    }
  }
  return (
    lastMs.toString(36).padStart(TIME_DIGITS, '0') +
    high.toString(36).padStart(HIGH_DIGITS, '0') +
    low.toString(36).padStart(LOW_DIGITS, '0')
  );
}

export const newThreadId = () => `thr_${cuid()}`;
export const newMessageId = () => `msg_${orderedId()}`;
export const newRunId = () => `run_${orderedId()}`;
export const newEventId = () => `evt_${orderedId()}`;

/** What a client may supply as a thread id. */
export const THREAD_ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$';
/** A tool call's id when the model gave none (OpenAI's own ids are `call_…` too). */
export const newToolCallId = () => `call_${cuid()}`;
