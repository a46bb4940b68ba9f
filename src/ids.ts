/**
 * Ids are Cuid2s: a random letter, then base-36 digits of SHA3-512(time + salt + counter +
 * fingerprint). This is the construction of @paralleldrive/cuid2, computed with Bun's native
 * SHA3: the library hashes in JavaScript (@noble/hashes) and converts the digest to base 36 a
 * byte at a time through BigInt, several times slower, and a message takes four ids when it is
 * accepted and three more in its run (bench/README.md has the figures). `tests/unit/ids.test.ts`
 * checks the output with the library's own `isCuid`.
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

export const newThreadId = () => `thr_${cuid()}`;
export const newMessageId = () => `msg_${cuid()}`;
export const newRunId = () => `run_${cuid()}`;
export const newEventId = () => `evt_${cuid()}`;

/** What a client may supply as a thread id. */
export const THREAD_ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$';
/** A tool call's id when the model gave none (OpenAI's own ids are `call_…` too). */
export const newToolCallId = () => `call_${cuid()}`;
