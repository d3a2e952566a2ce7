// 50 MB each way through a veer child process while watching the proxy's
// peak RSS (/proc/PID/status VmHWM).
//
// Each transfer has two phases:
//
//   stall:  the far reader takes ~1 MB, then stops reading. With working
//           backpressure the fast writer is held back after a few MB (socket
//           buffers), so veer's peak RSS barely moves; a proxy that buffered
//           would take in the remaining ~49 MB here.
//   finish: the far reader resumes, slowly (a pause after every chunk), and
//           the bytes are checked (count + sha256).
//
// The peak over the whole transfer is reported too. It includes socket read
// buffers that V8 frees lazily (it starts collecting only after tens of MB
// of external memory), so it is a GC figure more than a buffering one.

import { createHash, randomBytes } from 'node:crypto';
import { request, type IncomingMessage } from 'node:http';
import t from 'tap';
import { readProcessMemory, resetPeakRss, waitFor, withTimeout } from '../helpers/http.ts';
import { startUpstream } from '../helpers/upstreams.ts';
import { spawnVeer, writeConfig } from '../helpers/veer.ts';

const MB = 1024 * 1024;
const BODY_BYTES = 50 * MB;
const CHUNK_BYTES = 64 * 1024;
/** Bytes the far reader takes before it stalls. */
const STALL_AFTER = 1 * MB;
/** Peak RSS growth allowed while the reader stalls; buffering the body would add ~49 MB. */
const MAX_STALL_GROWTH_MB = 30;
/** Peak RSS growth allowed over a whole 50 MB transfer (GC slack included). */
const MAX_TRANSFER_GROWTH_MB = 100;

/** A reader that hashes what it reads, stalls after STALL_AFTER bytes until `go()`, then pauses `pauseMs` after every chunk. */
class SlowReader {
  readonly done: Promise<{ bytes: number; sha256: string }>;
  bytes = 0;
  #released = false;
  #stalled = false;
  readonly #stream: IncomingMessage;

  constructor(stream: IncomingMessage, pauseMs: number) {
    this.#stream = stream;
    const hash = createHash('sha256');
    const resume = () => stream.resume();
    this.done = new Promise((resolve, reject) => {
      stream.on('data', (chunk: Buffer) => {
        this.bytes += chunk.length;
        hash.update(chunk);
        stream.pause();
        if (!this.#released && this.bytes >= STALL_AFTER) this.#stalled = true;
        else setTimeout(resume, pauseMs);
      });
      stream.on('end', () => resolve({ bytes: this.bytes, sha256: hash.digest('hex') }));
      stream.on('error', reject);
      stream.on('aborted', () => reject(new Error('aborted')));
    });
  }

  /** Ends the stall: reading goes on, slowly. */
  go(): void {
    this.#released = true;
    if (this.#stalled) {
      this.#stalled = false;
      this.#stream.resume();
    }
  }
}

/** Writes `total` random bytes in chunks to `out`, honouring backpressure; `progress.bytes` counts what was accepted. */
async function writeRandom(out: NodeJS.WritableStream, total: number, progress: { bytes: number }): Promise<string> {
  const hash = createHash('sha256');
  for (let sent = 0; sent < total; sent += CHUNK_BYTES) {
    const chunk = randomBytes(Math.min(CHUNK_BYTES, total - sent));
    hash.update(chunk);
    progress.bytes += chunk.length;
    if (!out.write(chunk)) await new Promise((resolve) => out.once('drain', resolve));
  }
  return hash.digest('hex');
}

/** Resolves once `progress.bytes` has not moved for `quietMs` (bounded by `timeoutMs`); true when it settled. */
async function waitUntilStalled(progress: { bytes: number }, quietMs = 400, timeoutMs = 5000): Promise<boolean> {
  let last = -1;
  let since = Date.now();
  return waitFor(
    () => {
      if (progress.bytes !== last) {
        last = progress.bytes;
        since = Date.now();
        return false;
      }
      return Date.now() - since >= quietMs;
    },
    timeoutMs,
    50,
  );
}

// RSS can shrink after a peak reset, so growth is shown from 0.
const mb = (kb: number) => (Math.max(0, kb) / 1024).toFixed(1);

t.test('50 MB up and down stream through veer with backpressure and bounded memory', async (t) => {
  let uploadReader: SlowReader | null = null;
  const downloadWriter = { bytes: 0 };
  let downloadSha: Promise<string> | null = null;
  const up = await startUpstream('v1', (req, res) => {
    if (req.url === '/upload') {
      const reader = new SlowReader(req, 2);
      uploadReader = reader;
      reader.done.then(
        (r) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(r));
        },
        () => res.destroy(),
      );
    } else if (req.url === '/download') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BODY_BYTES) });
      downloadSha = writeRandom(res, BODY_BYTES, downloadWriter).then((sha) => {
        res.end();
        return sha;
      });
    } else {
      res.end('ok');
    }
  });
  t.teardown(() => up.close());

  const config = writeConfig(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: info }
services:
  - name: svc
    versions:
      - name: v1
        upstream: ${up.url}
    timeouts: { connect: 2s, response: 30s }
`);
  const veer = spawnVeer(['serve', '--config', config]);
  t.teardown(async () => {
    veer.child.kill('SIGKILL');
    await veer.exited;
  });
  const serving = await veer.waitForLog('veer is serving');
  const port = Number(String(serving.listen).split(':').pop());
  t.ok(port > 0, `veer child (pid ${veer.pid}) listens on ${port}`);

  // Warm up (compiles the proxy path, opens the pool) so the baseline includes it.
  for (let i = 0; i < 20; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/warm`, { method: 'POST', body: 'x' });
    await res.text();
  }

  // ---- upload: the test streams 50 MB in 64 kB chunks to an upstream that reads slowly.
  const peakReset = resetPeakRss(veer.pid);
  const beforeUpload = readProcessMemory(veer.pid);
  const uploadStarted = performance.now();
  const sent = { bytes: 0 };
  let uploadSha: Promise<string> | null = null;
  const uploadResponse = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/upload', headers: { 'content-length': String(BODY_BYTES) } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    uploadSha = writeRandom(req, BODY_BYTES, sent).then((sha) => {
      req.end();
      return sha;
    }, reject) as Promise<string>;
  });
  t.ok(await waitUntilStalled(sent), 'upload: the client is held back while the upstream stalls');
  const uploadStall = readProcessMemory(veer.pid);
  const readWhileStalled = (uploadReader as SlowReader | null)?.bytes ?? 0;
  const uploadStallGrowth = uploadStall.peakKb - beforeUpload.rssKb;
  t.comment(`upload stall: client wrote ${mb(sent.bytes / 1024)} MB, upstream read ${mb(readWhileStalled / 1024)} MB`);
  t.ok(sent.bytes < BODY_BYTES - 10 * MB, `upload: the client could not push the body into veer (${mb(sent.bytes / 1024)} MB of 50 MB accepted)`);
  t.ok(uploadStallGrowth < MAX_STALL_GROWTH_MB * 1024, `upload stall: peak RSS growth ${mb(uploadStallGrowth)} MB < ${MAX_STALL_GROWTH_MB} MB`);
  (uploadReader as SlowReader | null)!.go();
  const uploadResult = await withTimeout(uploadResponse, 30_000, 'upload');
  const uploadMs = performance.now() - uploadStarted;
  const afterUpload = readProcessMemory(veer.pid);
  t.equal(uploadResult.status, 200, 'upload answered 200');
  const got = JSON.parse(uploadResult.body) as { bytes: number; sha256: string };
  t.equal(got.bytes, BODY_BYTES, 'the upstream received exactly 50 MB');
  t.equal(got.sha256, await uploadSha!, 'the upstream received the same bytes (sha256)');

  // ---- download: the upstream writes 50 MB as fast as it may; the client reads slowly.
  const peakReset2 = resetPeakRss(veer.pid);
  const beforeDownload = readProcessMemory(veer.pid);
  const downloadStarted = performance.now();
  let downloadReader: SlowReader | null = null;
  const downloadResponse = new Promise<{ status: number; bytes: number; sha256: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'GET', path: '/download' }, (res) => {
      downloadReader = new SlowReader(res, 2);
      downloadReader.done.then((r) => resolve({ status: res.statusCode ?? 0, ...r }), reject);
    });
    req.on('error', reject);
    req.end();
  });
  t.ok(await waitUntilStalled(downloadWriter), 'download: the upstream is held back while the client stalls');
  const downloadStall = readProcessMemory(veer.pid);
  const downloadStallGrowth = downloadStall.peakKb - beforeDownload.rssKb;
  t.comment(`download stall: upstream wrote ${mb(downloadWriter.bytes / 1024)} MB, client read ${mb(((downloadReader as SlowReader | null)?.bytes ?? 0) / 1024)} MB`);
  t.ok(downloadWriter.bytes < BODY_BYTES - 10 * MB, `download: the upstream could not push the body into veer (${mb(downloadWriter.bytes / 1024)} MB of 50 MB accepted)`);
  t.ok(downloadStallGrowth < MAX_STALL_GROWTH_MB * 1024, `download stall: peak RSS growth ${mb(downloadStallGrowth)} MB < ${MAX_STALL_GROWTH_MB} MB`);
  (downloadReader as SlowReader | null)!.go();
  const downloadResult = await withTimeout(downloadResponse, 30_000, 'download');
  const downloadMs = performance.now() - downloadStarted;
  const afterDownload = readProcessMemory(veer.pid);
  t.equal(downloadResult.status, 200, 'download answered 200');
  t.equal(downloadResult.bytes, BODY_BYTES, 'the client received exactly 50 MB');
  t.equal(downloadResult.sha256, await downloadSha!, 'the client received the same bytes (sha256)');

  // Without clear_refs the peak is cumulative, so the download is measured from the first baseline.
  const uploadGrowth = afterUpload.peakKb - (peakReset ? beforeUpload.rssKb : beforeUpload.peakKb);
  const downloadGrowth = afterDownload.peakKb - (peakReset2 ? beforeDownload.rssKb : beforeUpload.peakKb);
  t.comment(`veer RSS before the transfers: ${mb(beforeUpload.rssKb)} MB (peak reset per phase: ${peakReset && peakReset2 ? 'yes' : 'no'})`);
  t.comment(`peak RSS growth while the upstream stalled (upload): ${mb(uploadStallGrowth)} MB`);
  t.comment(`peak RSS growth during 50 MB upload: ${mb(uploadGrowth)} MB (${(uploadMs / 1000).toFixed(1)} s)`);
  t.comment(`peak RSS growth while the client stalled (download): ${mb(downloadStallGrowth)} MB`);
  t.comment(`peak RSS growth during 50 MB download: ${mb(downloadGrowth)} MB (${(downloadMs / 1000).toFixed(1)} s)`);
  t.ok(uploadGrowth < MAX_TRANSFER_GROWTH_MB * 1024, `upload: whole-transfer peak RSS growth ${mb(uploadGrowth)} MB < ${MAX_TRANSFER_GROWTH_MB} MB`);
  t.ok(downloadGrowth < MAX_TRANSFER_GROWTH_MB * 1024, `download: whole-transfer peak RSS growth ${mb(downloadGrowth)} MB < ${MAX_TRANSFER_GROWTH_MB} MB`);
});
