import { AppError } from '../errors';

/**
 * Reads a JSON request body ourselves so every rejection has our error shape: 415 for another
 * content type, 413 past the byte limit (checked on the header and on the bytes read), 400 for
 * malformed JSON.
 */
export async function readJsonBody(request: Request, maxBytes: number): Promise<unknown> {
  const type = request.headers.get('content-type') ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new AppError(
      'unsupported_media_type',
      'the body must be JSON with Content-Type: application/json',
    );
  }
  const tooLarge = () =>
    new AppError('payload_too_large', `the body is larger than ${maxBytes} bytes`, { maxBytes });
  if (Number(request.headers.get('content-length') ?? 0) > maxBytes) throw tooLarge();
  const bytes = await request.arrayBuffer();
  if (bytes.byteLength > maxBytes) throw tooLarge();
  const text = utf8.decode(bytes);
  // Deeply nested input would overflow the stack of the validator's error reporting (found by
  // the fuzz test): no request of ours nests deeper than a few levels.
  if (nestingDepth(text) > MAX_DEPTH) {
    throw new AppError('invalid_request', `the body nests deeper than ${MAX_DEPTH} levels`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new AppError('invalid_request', 'the body is not valid JSON');
  }
}

/**
 * A JSON body that may be left out (a cancel without a reason): no body at all reads as `{}`;
 * a body that is there follows `readJsonBody`'s rules.
 */
export async function readOptionalJsonBody(request: Request, maxBytes: number): Promise<unknown> {
  if (request.body === null) return {};
  if (!request.headers.get('content-type')) {
    const bytes = await request.arrayBuffer();
    if (bytes.byteLength === 0) return {};
  }
  return readJsonBody(request, maxBytes);
}

const MAX_DEPTH = 32;

/** One decoder for every request: without `stream`, decode() keeps no state between calls. */
const utf8 = new TextDecoder('utf-8', { fatal: false });

/** The deepest array/object nesting in JSON text, skipping string contents. One linear pass. */
export function nestingDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92)
        i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) max = Math.max(max, ++depth);
    else if (c === 93 || c === 125) depth--;
  }
  return max;
}
