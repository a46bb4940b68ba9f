import type * as pg from './postgres/schema';
import type * as sqlite from './sqlite/schema';

/**
 * The rows services see, whichever engine stores them. Both schemas must infer exactly these
 * types: the checks below fail to compile if one dialect's table drifts from the other's.
 */
export type Thread = sqlite.Thread;
export type Message = sqlite.Message;
export type Run = sqlite.Run;
export type OutboxRow = sqlite.OutboxRow;
export type WebhookDelivery = sqlite.WebhookDelivery;

export * from './run-columns';

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameRows: [
  Same<Thread, pg.Thread>,
  Same<Message, pg.Message>,
  Same<Run, pg.Run>,
  Same<OutboxRow, pg.OutboxRow>,
  Same<WebhookDelivery, pg.WebhookDelivery>,
] = [true, true, true, true, true];
void sameRows;
