// The MCP TypeScript SDK client of the interop tests (docs/mcp.md §10.4). Usage:
//   node mcp/client.mjs '<scenario JSON>'
// scenario: {"stdio": [command, ...args]} or {"url": "...", "headers": {...}}, and "steps":
//   {"op": "list"} | {"op": "call", "name", "arguments", "abortAfterMs"?} | {"op": "waitListChanged", "ms"}
// Prints one JSON line per step ({"step", "tools"|"result"|"error"|"listChanged"}), then
// {"done": true, "protocolVersion", "capabilities"}.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

const scenario = JSON.parse(process.argv[2]);
const out = (v) => process.stdout.write(JSON.stringify(v) + '\n');

let transport;
if (scenario.stdio) {
  transport = new StdioClientTransport({
    command: scenario.stdio[0], args: scenario.stdio.slice(1), env: { ...process.env, ...(scenario.env ?? {}) }, stderr: 'inherit',
  });
} else {
  transport = new StreamableHTTPClientTransport(new URL(scenario.url), { requestInit: { headers: scenario.headers ?? {} } });
}
const client = new Client({ name: 'alknet-interop', version: '1.0.0' });
let listChanged = 0;
client.setNotificationHandler(ToolListChangedNotificationSchema, () => { listChanged++; });
await client.connect(transport);

for (const [i, step] of (scenario.steps ?? []).entries()) {
  try {
    if (step.op === 'list') {
      const res = await client.listTools();
      out({ step: i, tools: res.tools });
    } else if (step.op === 'call') {
      const ac = new AbortController();
      if (step.abortAfterMs) setTimeout(() => ac.abort(), step.abortAfterMs);
      const res = await client.callTool({ name: step.name, arguments: step.arguments ?? {} }, undefined,
        { signal: ac.signal, timeout: step.timeoutMs ?? 60000 });
      out({ step: i, result: res });
    } else if (step.op === 'waitListChanged') {
      const start = listChanged;
      const deadline = Date.now() + (step.ms ?? 10000);
      while (listChanged === start && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      out({ step: i, listChanged: listChanged - start });
    }
  } catch (e) {
    out({ step: i, error: String(e?.message ?? e), code: e?.code ?? null });
    // The SDK sends notifications/cancelled without awaiting it: let it leave before closing.
    if (step.abortAfterMs) await new Promise((r) => setTimeout(r, 500));
  }
}
out({ done: true, protocolVersion: transport.protocolVersion ?? client._negotiatedProtocolVersion ?? null,
  capabilities: client.getServerCapabilities() ?? null });
await client.close();
process.exit(0);
