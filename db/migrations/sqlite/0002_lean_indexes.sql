DROP INDEX `messages_run_role`;--> statement-breakpoint
CREATE UNIQUE INDEX `messages_run_reply` ON `messages` (`run_id`) WHERE role = 'assistant';--> statement-breakpoint
DROP INDEX `outbox_event_id_unique`;