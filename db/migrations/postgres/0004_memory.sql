ALTER TABLE "messages" ADD COLUMN "tokens" integer;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "memory" jsonb;--> statement-breakpoint
ALTER TABLE "threads" ADD COLUMN "summary_tokens" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "threads" ADD COLUMN "title" text;--> statement-breakpoint
ALTER TABLE "threads" ADD COLUMN "title_source" text;