DROP INDEX "messages_thread_seq";--> statement-breakpoint
DROP INDEX "messages_run_reply";--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "position" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "tool_calls" jsonb;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "tool_call_id" text;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "name" text;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "is_error" boolean;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "tools" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "steps" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "tool_call_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "messages_thread_seq_position" ON "messages" USING btree ("thread_id","seq","position");--> statement-breakpoint
CREATE UNIQUE INDEX "messages_run_reply" ON "messages" USING btree ("run_id") WHERE role = 'assistant' and tool_calls is null;