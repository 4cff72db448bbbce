import pino from 'pino';
import type { DestinationStream, Logger } from 'pino';

/**
 * Paths pino blanks out wherever they appear: credentials never reach a log line
 * even if a future log call passes a whole request or body by mistake.
 */
export const REDACTED_LOG_PATHS = [
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'secret',
  '*.secret',
  'secretKey',
  '*.secretKey',
  'apiKey',
  '*.apiKey',
  'adminKey',
  'body',
  'req.body',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({ level, redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' }, base: { service: 'portcullis' } }, destination);
}
