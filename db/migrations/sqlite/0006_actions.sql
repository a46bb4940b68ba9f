ALTER TABLE `runs` ADD `client_tools` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `runs` ADD `action` text;--> statement-breakpoint
ALTER TABLE `runs` ADD `approved` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `runs` ADD `resumed` integer DEFAULT false NOT NULL;