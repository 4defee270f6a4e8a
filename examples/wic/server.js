// A tiny static server for the WIC page: the page's own files and JsSIP's
// browser build from node_modules, nothing else, on loopback by default.
//
//   node server.js [--host 127.0.0.1] [--port 8090] [--modules DIR]
//
// --port 0 takes a free port. It prints one line, "wic page: http://HOST:PORT/",
// once it listens. --modules is the node_modules folder that holds jssip
// (default: the one beside this file; the tests install it in the build tree).
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

// URL path -> [file, content type]. An allow-list: no directory is served.
function routes(modulesDir) {
  return new Map([
    ['/', [join(here, 'index.html'), 'text/html; charset=utf-8']],
    ['/index.html', [join(here, 'index.html'), 'text/html; charset=utf-8']],
    ['/wic.css', [join(here, 'wic.css'), 'text/css; charset=utf-8']],
    ['/wic.js', [join(here, 'wic.js'), 'text/javascript; charset=utf-8']],
    ['/turn-credential.js', [join(here, 'turn-credential.js'), 'text/javascript; charset=utf-8']],
    ['/vendor/jssip.min.js',
      [join(modulesDir, 'jssip', 'dist', 'jssip.min.js'), 'text/javascript; charset=utf-8']],
  ]);
}

// Starts the server; resolves to {server, url} once it listens.
export function startServer({ host = '127.0.0.1', port = 0, modulesDir = join(here, 'node_modules') } = {}) {
  const files = routes(modulesDir);
  const server = createServer(async (req, res) => {
    const path = new URL(req.url, 'http://localhost').pathname;
    const route = files.get(path);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    if (!route) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    try {
      const body = await readFile(route[0]);
      res.writeHead(200, { 'Content-Type': route[1], 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (err) {
      res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`cannot read ${path}: ${err.code}\n`);
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const { address, port: bound } = server.address();
      resolve({ server, url: `http://${address}:${bound}/` });
    });
  });
}

// node server.js ...
function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i += 2) {
    const [name, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${name} needs a value`);
    if (name === '--host') opts.host = value;
    else if (name === '--port') opts.port = Number(value);
    else if (name === '--modules') opts.modulesDir = value;
    else throw new Error(`unknown option ${name} (--host, --port, --modules)`);
  }
  return opts;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    const { url } = await startServer(parseArgs(process.argv.slice(2)));
    console.log(`wic page: ${url}`);
  } catch (err) {
    console.error(`wic server: ${err.message}`);
    process.exit(2);
  }
}
