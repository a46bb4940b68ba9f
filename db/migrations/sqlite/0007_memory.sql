ALTER TABLE `messages` ADD `tokens` integer;--> statement-breakpoint
ALTER TABLE `runs` ADD `memory` text;--> statement-breakpoint
ALTER TABLE `threads` ADD `summary_tokens` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `threads` ADD `title` text;--> statement-breakpoint
ALTER TABLE `threads` ADD `title_source` text;