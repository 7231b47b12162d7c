// An MCP server on the TypeScript SDK over streamable HTTP on 127.0.0.1 (docs/mcp.md §10.4):
// the from_mcp http target. Tools: get-sum; POST /hop answers 307 to another origin
// (other.mjs). Prints {"url","hop","other"} on stdout.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { startOther } from '../fastify/other.mjs';

const other = await startOther();
const transports = new Map();
const authSeen = [];

function newServer() {
  const server = new McpServer({ name: 'interop-server', version: '1.0.0' });
  server.registerTool('get-sum', { description: 'Add a and b.', inputSchema: { a: z.number(), b: z.number() },
    annotations: { readOnlyHint: true } },
  async ({ a, b }) => ({ content: [{ type: 'text', text: `The sum of ${a} and ${b} is ${a + b}.` }] }));
  return server;
}

const httpServer = http.createServer(async (req, res) => {
  if (req.url === '/hop') {
    res.writeHead(307, { location: `${other.url}/mcp` });
    res.end();
    return;
  }
  if (req.url === '/auth-seen') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(authSeen));
    return;
  }
  if (req.url !== '/mcp') { res.writeHead(404).end(); return; }
  if (req.headers.authorization) authSeen.push(req.headers.authorization);
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
  const sid = req.headers['mcp-session-id'];
  let transport = sid ? transports.get(sid) : undefined;
  if (!transport) {
    transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => transports.set(id, transport) });
    await newServer().connect(transport);
  }
  await transport.handleRequest(req, res, body);
});
await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${httpServer.address().port}`;
console.log(JSON.stringify({ url: `${base}/mcp`, hop: `${base}/hop`, other: other.url }));
