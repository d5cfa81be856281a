// TypeScript SDK peer for hostmcp's benchmark: @modelcontextprotocol/sdk 1.32.x on Node 22,
// on plain node:http (the SDK's fastest stock setup; its express helper only adds layers).
//
// usage: BENCH_TOKEN=secret node server.mjs --listen 127.0.0.1:PORT
//
// The same two tools as the hostmcp targets, behind the same bearer check:
//   echo {"text": s}                                    -> text content s
//   run_command {"argv": [...]} | {"command": "sh line"} -> runs it as a child process;
//                                                        structuredContent {exit_code, stdout, stderr}
// /mcp: Streamable HTTP session era (one McpServer + transport per session, as the SDK
// documents). The SDK has no 2026-07-28 era; a POST without a session that is not
// `initialize` is served the SDK's stateless way (a fresh McpServer + transport with
// sessionIdGenerator: undefined per request). /sse + /messages: the SDK's SSEServerTransport.
// Prints `address=HOST:PORT` on stderr once it listens.
import http from 'node:http';
import { spawn } from 'node:child_process';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const listenArg = process.argv.indexOf('--listen');
const listen = listenArg > 0 ? process.argv[listenArg + 1] : '127.0.0.1:0';
const sep = listen.lastIndexOf(':');
const host = listen.slice(0, sep);
const port = Number(listen.slice(sep + 1));
const expected = Buffer.from(`Bearer ${process.env.BENCH_TOKEN ?? ''}`);

function runCommand({ command, argv }) {
  return new Promise((resolve) => {
    const child = argv && argv.length
      ? spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(command ?? '', { shell: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (c) => out.push(c));
    child.stderr.on('data', (c) => err.push(c));
    child.on('error', (e) => resolve({ exit_code: null, stdout: '', stderr: String(e) }));
    child.on('close', (code) => resolve({
      exit_code: code,
      stdout: Buffer.concat(out).toString(),
      stderr: Buffer.concat(err).toString(),
    }));
  });
}

function newServer() {
  const server = new McpServer({ name: 'bench-node-peer', version: '0.0.0' });
  server.registerTool('echo', {
    description: 'Return the text unchanged.',
    inputSchema: { text: z.string() },
  }, async ({ text }) => ({ content: [{ type: 'text', text }] }));
  server.registerTool('run_command', {
    description: 'Run a command (argv without a shell, or a shell command line).',
    inputSchema: { command: z.string().optional(), argv: z.array(z.string()).optional() },
    outputSchema: { exit_code: z.number().nullable(), stdout: z.string(), stderr: z.string() },
  }, async (input) => {
    const result = await runCommand(input);
    return { content: [{ type: 'text', text: JSON.stringify(result) }], structuredContent: result };
  });
  return server;
}

function authorized(req) {
  const got = Buffer.from(req.headers.authorization ?? '');
  return got.length === expected.length && timingSafeEqual(got, expected);
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      try { resolve(JSON.parse(Buffer.concat(chunks).toString())); } catch (e) { reject(e); }
    });
    req.on('error', reject);
  });
}

function reply(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

const sessions = new Map();     // Mcp-Session-Id -> StreamableHTTPServerTransport
const sseSessions = new Map();  // sessionId -> SSEServerTransport

async function handleMcp(req, res) {
  const sid = req.headers['mcp-session-id'];
  if (sid) {
    const transport = sessions.get(sid);
    if (!transport) return reply(res, 404, { error: 'session not found' });
    const body = req.method === 'POST' ? await readJson(req) : undefined;
    return transport.handleRequest(req, res, body);
  }
  if (req.method !== 'POST') return reply(res, 405, { error: 'method not allowed' });
  const body = await readJson(req);
  if (isInitializeRequest(body)) {
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => { sessions.set(id, transport); },
    });
    transport.onclose = () => { if (transport.sessionId) sessions.delete(transport.sessionId); };
    await newServer().connect(transport);
    return transport.handleRequest(req, res, body);
  }
  // Stateless: the SDK's documented per-request server.
  const server = newServer();
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => { transport.close(); server.close(); });
  await server.connect(transport);
  return transport.handleRequest(req, res, body);
}

async function handle(req, res) {
  if (!authorized(req)) {
    res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer realm="bench"' });
    return res.end('{"error":"unauthorized"}');
  }
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/mcp') return handleMcp(req, res);
  if (url.pathname === '/sse' && req.method === 'GET') {
    const transport = new SSEServerTransport('/messages', res);
    sseSessions.set(transport.sessionId, transport);
    res.on('close', () => sseSessions.delete(transport.sessionId));
    return newServer().connect(transport);
  }
  if (url.pathname === '/messages' && req.method === 'POST') {
    const transport = sseSessions.get(url.searchParams.get('sessionId'));
    if (!transport) return reply(res, 404, { error: 'session not found' });
    return transport.handlePostMessage(req, res, await readJson(req));
  }
  return reply(res, 404, { error: 'not found' });
}

const httpServer = http.createServer((req, res) => {
  handle(req, res).catch((e) => {
    if (!res.headersSent) reply(res, 500, { error: String(e) });
  });
});
httpServer.keepAliveTimeout = 120_000;
httpServer.headersTimeout = 125_000;
httpServer.requestTimeout = 0;
httpServer.listen(port, host, () => {
  const a = httpServer.address();
  process.stderr.write(`address=${a.address}:${a.port}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
