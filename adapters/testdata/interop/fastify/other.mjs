// Another origin on 127.0.0.1 that records every Authorization header it receives; the
// from_openapi and from_mcp redirect tests check that it got none (docs/http.md §5.7).
import http from 'node:http';

export async function startOther() {
  const seen = [];
  const server = http.createServer((req, res) => {
    if (req.url === '/seen') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ authorizations: seen.length }));
      return;
    }
    if (req.headers.authorization) seen.push(req.headers.authorization);
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":"not here"}');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, server };
}
