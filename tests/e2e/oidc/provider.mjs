// An OpenID provider nobody here wrote (panva's oidc-provider, pinned in
// scripts/test-deps/oidc), for tests/e2e/test_resource_server.py: it issues JWT access
// tokens by the client_credentials grant with RFC 8707 resource indicators, so their `aud`
// is the resource the client asks for (hostmcp's /mcp URL).
//
//   HOSTMCP_OIDC=<node_modules with oidc-provider> node provider.mjs PORT KEYS_FILE
//
// KEYS_FILE: {"keys": [private JWKs]}, the provider's signing keys (the test makes them, so it
// can rotate them by restarting the provider with another file). Serves http on 127.0.0.1
// only; prints "listening <issuer>" once it accepts connections. Clients (secret "secret"):
//   ops-client    roles ["hostmcp-ops"]      read-client  roles ["hostmcp-read"]
//   norole-client no roles claim             short-client roles ["hostmcp-ops"], tokens live 1 s
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// The package lives in the test-deps prefix, not beside this file (ESM ignores NODE_PATH).
const modules = process.env.HOSTMCP_OIDC;
if (!modules) {
  console.error('HOSTMCP_OIDC is not set: eval "$(scripts/install-test-deps.sh)"');
  process.exit(2);
}
const { default: Provider } = await import(
  pathToFileURL(join(modules, 'oidc-provider', 'lib', 'index.js')).href
);

const [port, keysFile] = process.argv.slice(2);
if (!port || !keysFile) {
  console.error('usage: node provider.mjs PORT KEYS_FILE');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const jwks = JSON.parse(readFileSync(keysFile, 'utf8'));

const ROLES = {
  'ops-client': ['hostmcp-ops'],
  'read-client': ['hostmcp-read'],
  'short-client': ['hostmcp-ops'],
};
const client = (client_id) => ({
  client_id,
  client_secret: 'secret',
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: 'client_secret_post',
});

const provider = new Provider(issuer, {
  clients: ['ops-client', 'read-client', 'norole-client', 'short-client'].map(client),
  jwks,
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: false },
    resourceIndicators: {
      enabled: true,
      // Every resource the test names is a resource server that takes JWT access tokens.
      getResourceServerInfo: (ctx, resource, client) => ({
        scope: 'mcp',
        audience: resource,
        accessTokenFormat: 'jwt',
        accessTokenTTL: client.clientId === 'short-client' ? 1 : 300,
        jwt: { sign: { alg: 'RS256' } },
      }),
      useGrantedResource: () => true,
    },
  },
  extraTokenClaims: (ctx, token) => {
    const roles = ROLES[token.clientId];
    return roles ? { roles } : undefined;
  },
});

const server = createServer(provider.callback());
server.listen(Number(port), '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
