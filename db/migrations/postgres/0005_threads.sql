CREATE TABLE "thread_metadata" (
	"thread_id" text NOT NULL,
	"key" text NOT NULL,
	"value" text NOT NULL
);
--> statement-breakpoint
ALTER TABLE "threads" ADD COLUMN "metadata" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "thread_metadata" ADD CONSTRAINT "thread_metadata_thread_id_threads_id_fk" FOREIGN KEY ("thread_id") REFERENCES "public"."threads"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "thread_metadata_thread_key" ON "thread_metadata" USING btree ("thread_id","key");--> statement-breakpoint
CREATE INDEX "thread_metadata_key_value" ON "thread_metadata" USING btree ("key","value","thread_id");--> statement-breakpoint
CREATE INDEX "threads_updated" ON "threads" USING btree ("updated_at","id");