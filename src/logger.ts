import pino from 'pino';
import type { LogLevel } from './config';

export type Logger = pino.Logger;

/** Structured JSON lines on stdout. `silent` is for tests that assert on behaviour, not logs. */
export function createLogger(level: LogLevel | 'silent'): Logger {
  return pino({ level, base: { pid: process.pid } });
}
