#!/usr/bin/env node
// scripts/demo/cdn.js — the demo's stand-in CDN (started by scripts/demo.sh;
// Node's standard library only). Serves /videos/* over HTTPS with a
// certificate made for the demo, answering with a CDN's cache headers
// (X-Cache HIT for most requests, MISS for a few, and Age), so the exporter's
// cdn module sees cache results, a download throughput and a certificate expiry.
'use strict';

const https = require('https');
const fs = require('fs');

function flag(name) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || i + 1 >= process.argv.length) {
    console.error(`cdn: --${name} is required`);
    process.exit(2);
  }
  return process.argv[i + 1];
}

const port = Number(flag('port'));
const options = { key: fs.readFileSync(flag('key')), cert: fs.readFileSync(flag('cert')) };
// A 256 KiB "sample video": big enough for a throughput figure, small enough for every scrape.
const sample = Buffer.alloc(256 * 1024, 0x42);
const cachedAt = Date.now();

const server = https.createServer(options, (req, res) => {
  if (!(req.url || '').startsWith('/videos/')) {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found\n');
    return;
  }
  // 97% hits: above the 90% CdnCacheHitRatioLow threshold even over few probes.
  const hit = Math.random() < 0.97;
  res.writeHead(200, {
    'Content-Type': 'video/mp4',
    'Content-Length': sample.length,
    'Cache-Control': 'public, max-age=86400',
    'X-Cache': hit ? 'HIT' : 'MISS',
    Age: hit ? String(Math.floor((Date.now() - cachedAt) / 1000)) : '0',
  });
  res.end(req.method === 'HEAD' ? undefined : sample);
});
server.listen(port, '127.0.0.1');

function stop() {
  server.close();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
