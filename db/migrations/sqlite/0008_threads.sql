CREATE TABLE `thread_metadata` (
	`thread_id` text NOT NULL,
	`key` text NOT NULL,
	`value` text NOT NULL,
	FOREIGN KEY (`thread_id`) REFERENCES `threads`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `thread_metadata_thread_key` ON `thread_metadata` (`thread_id`,`key`);--> statement-breakpoint
CREATE INDEX `thread_metadata_key_value` ON `thread_metadata` (`key`,`value`,`thread_id`);--> statement-breakpoint
ALTER TABLE `threads` ADD `metadata` text DEFAULT '{}' NOT NULL;--> statement-breakpoint
CREATE INDEX `threads_updated` ON `threads` (`updated_at`,`id`);