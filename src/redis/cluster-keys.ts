/**
 * Redis's hash tag of a key: the text between its first `{` and the next `}`, when that is not
 * empty. A key with a tag is placed in a Cluster by the tag alone.
 */
export function hashTagOf(key: string): string | undefined {
  const open = key.indexOf('{');
  if (open < 0) return undefined;
  const close = key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : undefined;
}

/**
 * The Redis Cluster key rule, the one place it lives. BullMQ's scripts and our pipelines touch
 * several keys at once (the queue's keys; the main stream and a run's stream in one pipeline,
 * then the job), and a Cluster only runs those when every key is in one slot. So every key
 * carries the stream key's hash tag: a stream key with a tag (`app:{agent}:events`) keeps it,
 * one without braces is wrapped whole (`agent_events` → `{agent_events}`), and the queue prefix
 * gets the tag in front (`bull` → `{agent_events}:bull`). The run streams
 * (`<stream key>:run:<runId>`) start with the stream key, so they inherit it. Applying the rule
 * twice changes nothing.
 */
export function clusterKeys(streamKey: string, queuePrefix: string) {
  const tag = hashTagOf(streamKey) ?? streamKey;
  return {
    streamKey: hashTagOf(streamKey) === undefined ? `{${streamKey}}` : streamKey,
    queuePrefix: hashTagOf(queuePrefix) === tag ? queuePrefix : `{${tag}}:${queuePrefix}`,
  };
}
