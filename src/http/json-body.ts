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
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  try {
    return JSON.parse(text);
  } catch {
    throw new AppError('invalid_request', 'the body is not valid JSON');
  }
}
