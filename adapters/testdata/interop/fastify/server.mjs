// The from_openapi target (docs/http.md §10.4): a pets API on fastify, its OpenAPI 3.1
// document from @fastify/swagger at /openapi.json, beside another origin (other.mjs).
// Prints {"url","other"} on stdout once both listen.
import Fastify from 'fastify';
import swagger from '@fastify/swagger';
import { startOther } from './other.mjs';

const other = await startOther();
const app = Fastify({ logger: false });
await app.register(swagger, {
  openapi: {
    openapi: '3.1.0',
    info: { title: 'pets', version: '1.0.0' },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer' },
        key: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
      },
    },
  },
});

const pets = new Map([['1', { id: '1', name: 'Rex', tag: null }]]);
let nextId = 2;
const stats = { slowClosed: 0 };
const Pet = {
  type: 'object', required: ['id', 'name'],
  properties: { id: { type: 'string' }, name: { type: 'string' }, tag: { type: ['string', 'null'] } },
};
const Err = { type: 'object', properties: { error: { type: 'string' } } };

app.get('/pets', {
  schema: {
    operationId: 'listPets', summary: 'List pets, optionally by tag.',
    querystring: { type: 'object', properties: { tag: { type: 'array', items: { type: 'string' } } } },
    response: { 200: { type: 'array', items: Pet } },
  },
}, async (req) => {
  const tags = [].concat(req.query.tag ?? []);
  return [...pets.values()].filter((p) => tags.length === 0 || tags.includes(p.tag));
});

app.post('/pets', {
  schema: {
    operationId: 'createPet', summary: 'Add a pet.',
    body: { type: 'object', required: ['name'], additionalProperties: false,
      properties: { name: { type: 'string' }, tag: { type: ['string', 'null'] } } },
    response: { 201: Pet, 400: Err },
  },
}, async (req, reply) => {
  const pet = { id: String(nextId++), name: req.body.name, tag: req.body.tag ?? null };
  pets.set(pet.id, pet);
  reply.code(201);
  return pet;
});

app.get('/pets/:id', {
  schema: {
    operationId: 'getPet', summary: 'One pet by id.',
    params: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } },
    response: { 200: Pet, 404: Err },
  },
}, async (req, reply) => {
  const pet = pets.get(req.params.id);
  if (!pet) { reply.code(404); return { error: 'no such pet' }; }
  return pet;
});

app.get('/secure', {
  schema: {
    operationId: 'secure', summary: 'Echo the Authorization header.', security: [{ bearer: [] }],
    response: { 200: { type: 'object', properties: { authorization: { type: 'string' } } }, 403: Err },
  },
}, async (req, reply) => {
  if (!req.headers.authorization) { reply.code(403); return { error: 'no token' }; }
  return { authorization: req.headers.authorization };
});

app.get('/keyed', {
  schema: { operationId: 'keyed', security: [{ key: [] }], response: { 200: { type: 'object', properties: { key: { type: 'string' } } } } },
}, async (req) => ({ key: req.headers['x-api-key'] ?? '' }));

app.get('/slow', { schema: { operationId: 'slow', response: { 200: { type: 'object' } } } }, (req, reply) => {
  const t = setTimeout(() => reply.send({}), 60000);
  req.raw.on('close', () => { clearTimeout(t); if (!reply.sent) stats.slowClosed++; });
});

app.get('/big', { schema: { operationId: 'big', response: { 200: { type: 'string' } } } }, async () => 'x'.repeat(5 << 20));

app.get('/hop', { schema: { operationId: 'hop', security: [{ bearer: [] }], response: { 200: { type: 'object' } } } },
  async (req, reply) => reply.code(307).redirect(`${other.url}/landed`));

app.get('/stats', { schema: { hide: true } }, async () => stats);
app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

await app.listen({ host: '127.0.0.1', port: 0 });
console.log(JSON.stringify({ url: `http://127.0.0.1:${app.server.address().port}`, other: other.url }));
