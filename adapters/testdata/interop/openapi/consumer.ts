// A typed client generated from alknet's /openapi.json (openapi-typescript) calling demo/add
// with openapi-fetch; compiled with tsc --strict (docs/http.md §10.4). Usage, after tsc:
//   node consumer.js <base URL>   → prints the output of demo/add {"a":2,"b":40}
import createClient from 'openapi-fetch';
import type { paths } from './api.js';

async function main(): Promise<void> {
  const client = createClient<paths>({ baseUrl: process.argv[2] });
  const { data, error } = await client.POST('/ops/demo/add', { body: { a: 2, b: 40 } });
  if (error !== undefined || data === undefined) {
    console.error(JSON.stringify(error));
    process.exit(1);
  }
  const sum: number = data.sum;
  console.log(JSON.stringify({ sum }));
}

void main();
