DROP INDEX `messages_thread_seq`;--> statement-breakpoint
DROP INDEX `messages_run_reply`;--> statement-breakpoint
ALTER TABLE `messages` ADD `position` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `messages` ADD `tool_calls` text;--> statement-breakpoint
ALTER TABLE `messages` ADD `tool_call_id` text;--> statement-breakpoint
ALTER TABLE `messages` ADD `name` text;--> statement-breakpoint
ALTER TABLE `messages` ADD `is_error` integer;--> statement-breakpoint
CREATE UNIQUE INDEX `messages_thread_seq_position` ON `messages` (`thread_id`,`seq`,`position`);--> statement-breakpoint
CREATE UNIQUE INDEX `messages_run_reply` ON `messages` (`run_id`) WHERE role = 'assistant' and tool_calls is null;--> statement-breakpoint
ALTER TABLE `runs` ADD `tools` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `runs` ADD `steps` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `runs` ADD `tool_call_count` integer DEFAULT 0 NOT NULL;