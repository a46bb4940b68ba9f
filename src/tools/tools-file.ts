import { readFileSync } from 'node:fs';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { createSchemaCompiler } from './json-schema';
import { MCP_SEPARATOR, type ToolsFile, toolsFileSchema } from './model';

const checkShape = TypeCompiler.Compile(toolsFileSchema);

/**
 * Reads `TOOLS_FILE`: JSON of `{http: [...], mcp: [...]}`, every `${VAR}` in its strings taken
 * from `env` (so secrets stay out of the file). Returns the file, or every problem found, each
 * naming where it is, so the server can refuse to start with them all (`loadConfig`).
 */
export function readToolsFile(
  path: string,
  env: Record<string, string | undefined>,
): { file: ToolsFile; problems: [] } | { file: undefined; problems: string[] } {
  const fail = (...problems: string[]) => ({ file: undefined, problems });
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    return fail(`cannot read it: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return fail(`not JSON: ${(error as Error).message}`);
  }
  const problems: string[] = [];
  const expanded = expand(parsed, '', env, problems);
  if (problems.length > 0) return fail(...problems);
  if (!checkShape.Check(expanded)) {
    return fail(
      ...[...checkShape.Errors(expanded)]
        .slice(0, 5)
        .map((issue) => `${issue.path || '(root)'}: ${issue.message}`),
    );
  }
  const file: ToolsFile = { http: expanded.http ?? [], mcp: expanded.mcp ?? [] };
  const compiler = createSchemaCompiler();
  const names = new Set<string>();
  for (const [index, server] of file.mcp.entries()) {
    if (server.name.includes(MCP_SEPARATOR)) {
      problems.push(`/mcp/${index}/name: "${server.name}" may not contain "${MCP_SEPARATOR}"`);
    }
    if (names.has(server.name))
      problems.push(`/mcp/${index}/name: "${server.name}" is a duplicate`);
    names.add(server.name);
  }
  const toolNames = new Set<string>();
  for (const [index, tool] of file.http.entries()) {
    if (toolNames.has(tool.name))
      problems.push(`/http/${index}/name: "${tool.name}" is a duplicate`);
    toolNames.add(tool.name);
    const server = tool.name.split(MCP_SEPARATOR)[0] as string;
    if (tool.name.includes(MCP_SEPARATOR) && names.has(server)) {
      problems.push(
        `/http/${index}/name: "${tool.name}" clashes with the tools of MCP server "${server}"`,
      );
    }
    const compiled = compiler.compile(tool.parameters);
    if (typeof compiled === 'string') {
      problems.push(`/http/${index}/parameters: not a valid JSON Schema: ${compiled}`);
    }
  }
  return problems.length > 0 ? fail(...problems) : { file, problems: [] };
}

/** A copy of `value` with `${VAR}` replaced in every string; a missing variable is a problem. */
function expand(
  value: unknown,
  path: string,
  env: Record<string, string | undefined>,
  problems: string[],
  // biome-ignore lint/suspicious/noExplicitAny: the file's shape is checked after expansion
): any {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const found = env[name];
      if (found === undefined) {
        problems.push(`${path || '(root)'}: \${${name}} is not set in the environment`);
        return '';
      }
      return found;
    });
  }
  if (Array.isArray(value))
    return value.map((item, i) => expand(item, `${path}/${i}`, env, problems));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [
        key,
        expand(item, `${path}/${key}`, env, problems),
      ]),
    );
  }
  return value;
}
