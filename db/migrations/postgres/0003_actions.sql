ALTER TABLE "runs" ADD COLUMN "client_tools" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "action" jsonb;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "approved" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "resumed" boolean DEFAULT false NOT NULL;