#!/usr/bin/env node
// scripts/demo/smartalk-backend.js — the demo's stand-in for smartalk-backend
// (started by scripts/demo.sh; no npm packages, Node's standard library only).
//
// It owns everything the exporter watches on the "application" side:
//   - an HTTP server with the guide's health endpoint (/api/v1/health) and a few
//     api, videos and other routes, some slow and a few answering 5xx;
//   - its own traffic: a steady stream of requests to itself, so the access log
//     has api/videos/other lines with realistic statuses and latencies;
//   - the access log in nginx's default opsmon format (combined + $request_time);
//   - an application log with an ERROR line now and then (the guide's overnight errors);
//   - the daily-report heartbeat file, touched every 30 s as a job that succeeds;
//   - Redis reads and writes (session cache), so the keyspace hit ratio moves.
// Its command line contains "smartalk", so the shipped process group
// `cmdline: 'node .*smartalk'` counts it.
'use strict';

const http = require('http');
const net = require('net');
const fs = require('fs');
const path = require('path');

function flag(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  if (fallback === undefined) {
    console.error(`smartalk-backend: --${name} is required`);
    process.exit(2);
  }
  return fallback;
}

const port = Number(flag('port'));
const redisPort = Number(flag('redis-port'));
const accessLog = flag('access-log');
const appLog = flag('app-log');
const heartbeat = flag('heartbeat');
const requestsPerSecond = Number(flag('rps', '20'));

for (const file of [accessLog, appLog, heartbeat]) fs.mkdirSync(path.dirname(file), { recursive: true });
const access = fs.createWriteStream(accessLog, { flags: 'a' });
const app = fs.createWriteStream(appLog, { flags: 'a' });

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n) => String(n).padStart(2, '0');
// nginx's $time_local, in UTC: 29/Nov/2026:19:58:20 +0000
function timeLocal(d) {
  return `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}

// Session cache: inline Redis commands over one connection, replies ignored
// (the demo only needs the server to count hits and misses). Reconnects.
let redis = null;
function connectRedis() {
  const socket = net.createConnection({ host: '127.0.0.1', port: redisPort });
  socket.on('connect', () => {
    redis = socket;
    for (let i = 0; i < 100; i++) socket.write(`SET session:${i} user-${i}\r\n`);
  });
  socket.on('data', () => {});
  socket.on('error', () => {});
  socket.on('close', () => {
    redis = null;
    setTimeout(connectRedis, 1000);
  });
}
connectRedis();
function session() {
  // Keys 0..99 exist: about 9 of 10 lookups hit.
  if (redis) redis.write(`GET session:${Math.floor(Math.random() * 110)}\r\n`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
// Mostly fast, a long tail: p95 a few hundred milliseconds.
function latencyMs(route) {
  const base = route === 'videos' ? 30 : 8;
  const r = Math.random();
  if (r < 0.8) return base + Math.random() * 60;
  if (r < 0.97) return base + 60 + Math.random() * 300;
  return base + 400 + Math.random() * 900;
}

// A few ERROR lines, not one per failed request: at most one every two
// minutes keeps the demo under the ApplicationErrorLogBurst threshold
// (10 lines in 15 minutes) while the error-log panels still have data.
let lastErrorLine = 0;
function logFailure(url, status) {
  const now = Date.now();
  if (now - lastErrorLine < 120000) return;
  lastErrorLine = now;
  app.write(`${new Date(now).toISOString()} ERROR request ${url} failed with ${status}\n`);
}

const server = http.createServer(async (req, res) => {
  const started = process.hrtime.bigint();
  const url = req.url || '/';
  let status = 200;
  let body;
  if (url === '/api/v1/health') {
    body = JSON.stringify({ status: 'ok', service: 'smartalk-backend' });
  } else {
    const route = url.startsWith('/api/') ? 'api' : url.startsWith('/videos/') ? 'videos' : 'other';
    if (route === 'api') session();
    await sleep(latencyMs(route));
    const r = Math.random();
    if (url.startsWith('/missing')) status = 404;
    else if (route === 'api' && r < 0.02) status = 500;
    else if (route === 'api' && r < 0.03) status = 503;
    body = status === 200 ? JSON.stringify({ ok: true, path: url }) : JSON.stringify({ error: status });
    if (status >= 500) logFailure(url, status);
  }
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const agent = req.headers['user-agent'] || '-';
  access.write(`127.0.0.1 - - [${timeLocal(new Date())}] "${req.method} ${url} HTTP/1.1" ${status} ` +
    `${Buffer.byteLength(body)} "-" "${agent.replace(/"/g, '')}" ${seconds.toFixed(3)}\n`);
});
server.listen(port, '127.0.0.1', () => {
  app.write(`${new Date().toISOString()} INFO smartalk-backend listening on 127.0.0.1:${port}\n`);
});

// Traffic: a mix of the routes the shipped access-log config names.
const PATHS = [
  '/api/v1/lessons', '/api/v1/users/me', '/api/v1/progress', '/api/v1/events', '/api/v1/lessons/42',
  '/videos/lesson-1.mp4', '/videos/intro.mp4', '/', '/static/app.js', '/missing-page',
];
function tick() {
  const target = PATHS[Math.floor(Math.random() * PATHS.length)];
  const method = target === '/api/v1/events' ? 'POST' : 'GET';
  const req = http.request({ host: '127.0.0.1', port, path: target, method, agent: false,
    headers: { 'User-Agent': 'smartalk-demo-traffic/1.0' }, timeout: 5000 }, (res) => res.resume());
  req.on('error', () => {});
  req.on('timeout', () => req.destroy());
  req.end();
}
setInterval(tick, Math.max(5, Math.round(1000 / requestsPerSecond)));

// The daily-report job succeeds every 30 s in the demo.
function touch() {
  const now = new Date();
  try {
    fs.utimesSync(heartbeat, now, now);
  } catch {
    fs.writeFileSync(heartbeat, `${now.toISOString()}\n`);
  }
}
touch();
setInterval(touch, 30000);

function stop() {
  server.close();
  access.end();
  app.end();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
