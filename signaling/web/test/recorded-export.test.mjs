// A recorded room end to end with browsers: `signaling dev` with policies made by `signaling
// policy keygen|sign`, the real recorder (`recorder enroll`, `org-keygen`, `serve` trusting the
// admin's key, SIGTERM, `verify`, `export`), two headless Chromium callers whose microphone is a 660 Hz tone (a WAV
// made with ffmpeg) and whose camera is a y4m clip of ffmpeg's testsrc. The export must hold an
// Opus and a VP8 stream per caller that ffmpeg decodes without an error, and the audio's
// dominant frequency must be the tone's. A room whose policy another admin key signed shows no
// "kept N days" badge and wraps no key to the recorder, which refuses the room without joining.
// Strict recording: a caller alone in a recorded room whose recorder is not running yet shows
// the waiting note and sends no media until that recorder (a second `recorder serve`) receives
// its tracks.
//
// Needs `signaling` (embedded SFU) and `recorder` in target/debug (or $SIGNALING_BIN,
// $RECORDER_BIN) and ffmpeg; skipped, saying why, without them.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { artifact, launchBrowser, waitFor } from './harness.mjs';
import { openDevice, REPO, serviceSkip, SIGNALING_BIN, sleep, startDev } from './sfu-harness.mjs';

const RECORDER_BIN = process.env.RECORDER_BIN || `${REPO}target/debug/recorder`;
const TONE_HZ = 660;
/** How long the two browsers stay in the call (ms). */
const CALL_MS = Number(process.env.RECORDED_CALL_MS || 8000);
const RETENTION_DAYS = 30;

function skip() {
  const s = serviceSkip();
  if (s) return s;
  if (!existsSync(RECORDER_BIN)) return `${RECORDER_BIN} not built (cargo build -p recorder)`;
  if (spawnSync('ffmpeg', ['-version']).status !== 0) return 'ffmpeg not installed (scripts/install-deps)';
  return false;
}

const run = (bin, args, opts = {}) => execFileSync(bin, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });

/** The dominant frequency (Hz, 1 Hz steps over 300-1200 Hz) of mono s16le PCM at `rate`: a DFT of one second from its middle. */
export function dominantFrequency(pcm, rate) {
  const samples = new Int16Array(pcm.buffer, pcm.byteOffset, Math.floor(pcm.length / 2));
  const n = Math.min(rate, samples.length);
  const start = Math.max(0, Math.floor((samples.length - n) / 2));
  let best = { hz: 0, power: -1 };
  for (let hz = 300; hz <= 1200; hz++) {
    // Goertzel at `hz`.
    const k = (2 * Math.PI * hz) / rate;
    const coeff = 2 * Math.cos(k);
    let s1 = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const s0 = samples[start + i] + coeff * s1 - s2;
      s2 = s1;
      s1 = s0;
    }
    const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    if (power > best.power) best = { hz, power };
  }
  return best.hz;
}

/** A child process whose output is kept; `waitFor(re)` resolves with the first match. */
function child(bin, args, env) {
  const p = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let log = '';
  const onData = (d) => {
    // eslint-disable-next-line no-control-regex
    log = (log + d).replace(/\x1b\[[0-9;]*m/g, '').slice(-200_000);
  };
  p.stdout.on('data', onData);
  p.stderr.on('data', onData);
  const exited = new Promise((resolve) => p.once('exit', (code, signal) => resolve({ code, signal })));
  return {
    process: p,
    exited,
    log: () => log,
    async waitFor(re, timeoutMs = 20_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const m = re.exec(log);
        if (m) return m;
        if (Date.now() > end || p.exitCode !== null) throw new Error(`no ${re} in: ${log.slice(-3000)}`);
        await sleep(100);
      }
    },
  };
}

describe('a recorded room with browsers, exported', { skip: skip() }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'recorded-export-'));
  const f = (name) => join(dir, name);
  const stamp = Date.now();
  const room = `recorded-${stamp}`;
  const rogueRoom = `rogue-${stamp}`;
  const lateRoom = `late-${stamp}`;
  let orgPublic;
  let dev;
  let rec;
  let chromium;
  let adminKey;
  let metricsAddr;
  const devices = [];

  before(async () => {
    // Media: a 660 Hz tone (Chromium loops the file) and a test picture.
    run('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', `sine=frequency=${TONE_HZ}:sample_rate=48000:duration=10`, '-ac', '1', '-c:a', 'pcm_s16le', f('tone.wav')]);
    run('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=640x480:rate=15:duration=4', '-pix_fmt', 'yuv420p', f('camera.y4m')]);
    // Custody: the organization's key; the admin's key, and another admin's.
    orgPublic = run(RECORDER_BIN, ['org-keygen', '--out', f('org.key')]).trim();
    adminKey = run(SIGNALING_BIN, ['policy', 'keygen', '--out', f('admin.key')]).trim();
    run(SIGNALING_BIN, ['policy', 'keygen', '--out', f('rogue.key')]);
    // The recorder host; the policies naming it.
    writeFileSync(f('bundle.json'), run(RECORDER_BIN, ['enroll', '--device', 'rec-web', '--state-dir', f('state')]));
    // A second recorder, for the room whose recorder starts late (strict recording).
    writeFileSync(f('late-bundle.json'), run(RECORDER_BIN, ['enroll', '--device', 'rec-late', '--state-dir', f('late-state')]));
    const sign = (key, r, bundle = 'bundle.json') => JSON.parse(run(SIGNALING_BIN, ['policy', 'sign', '--admin-key', f(key), '--room', r, '--retention-days', String(RETENTION_DAYS), '--recorder-bundle', f(bundle)]));
    writeFileSync(f('policies.json'), JSON.stringify([sign('admin.key', room), sign('rogue.key', rogueRoom), sign('admin.key', lateRoom, 'late-bundle.json')]));
    dev = await startDev({ args: ['--recording-policy', f('policies.json')] });
    rec = child(RECORDER_BIN, ['serve'], {
      RECORDER_SIGNALING: `${dev.http.replace('http://', 'ws://')}/v1/rtc`,
      RECORDER_API_KEY: 'devkey',
      RECORDER_API_SECRET: 'devsecret',
      RECORDER_STATE_DIR: f('state'),
      RECORDER_ARCHIVE_DIR: f('archive'),
      RECORDER_ARCHIVE_RECIPIENT: orgPublic,
      RECORDER_TRUSTED_ADMIN_KEYS: adminKey,
      RECORDER_METRICS_LISTEN: '127.0.0.1:0',
      RUST_LOG: 'info',
      NO_COLOR: '1',
    });
    metricsAddr = (await rec.waitFor(/metrics on \/metrics bound=(127\.0\.0\.1:\d+)/))[1];
    chromium = await launchBrowser({ args: [`--use-file-for-fake-audio-capture=${f('tone.wav')}`, `--use-file-for-fake-video-capture=${f('camera.y4m')}`] });
  });
  let lateRec;
  after(async () => {
    for (const d of devices) await d.context.close().catch(() => {});
    await chromium?.close();
    if (lateRec && lateRec.process.exitCode === null) {
      lateRec.process.kill('SIGKILL');
      await lateRec.exited;
    }
    if (rec && rec.process.exitCode === null) {
      rec.process.kill('SIGKILL');
      await rec.exited;
    }
    await dev?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const metrics = async () => (await fetch(`http://${metricsAddr}/metrics`)).text();
  const metric = (page, line) => page.split('\n').filter((l) => l.startsWith(line)).reduce((a, l) => a + Number(l.split(' ').pop()), 0);

  /** What a page sent: its worker's sender counts and the outbound RTP streams' frames and bytes. */
  const sending = (page) =>
    page.evaluate(async () => {
      const w = await window.__call.media.stats();
      const send = w.transforms.filter((t) => t.side === 'send');
      const out = { encrypted: 0, held: 0, probes: 0, framesSent: 0, bytesSent: 0, streams: [] };
      for (const t of send) {
        out.encrypted += t.frames;
        out.held += t.heldFrames ?? 0;
        out.probes += t.probes ?? 0;
      }
      (await window.__call.pc.getStats()).forEach((s) => {
        if (s.type !== 'outbound-rtp') return;
        out.framesSent += s.framesSent ?? 0;
        out.bytesSent += s.bytesSent ?? 0;
        out.streams.push({ kind: s.kind, rid: s.rid ?? null, packets: s.packetsSent ?? 0, bytes: s.bytesSent ?? 0 });
      });
      return out;
    });

  test('recorded_room_holds_media_until_the_recorder_joins', { timeout: 120_000 }, async () => {
    // The caller is first, and the room's recorder is not running: the page says why nothing
    // of it is sent, without an error banner.
    const d = await openDevice(chromium, dev.http, lateRoom, 'dora', { name: 'Dora', params: { admin_key: adminKey } });
    devices.push(d);
    await d.page.waitForSelector('.badge.recording-hold');
    assert.match(await d.page.textContent('.badge.recording-hold'), /^Waiting for the recorder — this call is recorded; your microphone and camera start when it is ready$/);
    await sleep(3000);
    const held = await sending(d.page);
    // Frames are made (the camera and microphone run) but none is encrypted or sent: each RTP
    // stream carried only its probe (one byte, no media) so that the SFU publishes the track.
    // Chromium's bandwidth probing resends the probe packet (RTX padding), so a stream may count
    // many packets, none of more than a probe's few bytes (VP8 descriptor and the one byte).
    assert.equal(held.encrypted, 0, `nothing encrypted while held: ${JSON.stringify(held)}`);
    assert.ok(held.held > 50, `frames held: ${JSON.stringify(held)}`);
    assert.ok(held.probes >= 2 && held.probes <= 4, `one probe per stream: ${JSON.stringify(held)}`);
    for (const st of held.streams) assert.ok(st.bytes <= 8 * st.packets, `only probes on the wire: ${JSON.stringify(held)}`);
    assert.deepEqual(await d.page.evaluate(() => window.__call.state.warnings.map((w) => w.kind)), [], 'waiting is not an error');
    // The recorder starts; once it receives the tracks the page sends, from a keyframe.
    lateRec = child(RECORDER_BIN, ['serve'], {
      RECORDER_SIGNALING: `${dev.http.replace('http://', 'ws://')}/v1/rtc`,
      RECORDER_API_KEY: 'devkey',
      RECORDER_API_SECRET: 'devsecret',
      RECORDER_STATE_DIR: f('late-state'),
      RECORDER_ARCHIVE_DIR: f('late-archive'),
      RECORDER_ARCHIVE_RECIPIENT: orgPublic,
      RECORDER_TRUSTED_ADMIN_KEYS: adminKey,
      RECORDER_METRICS_LISTEN: '127.0.0.1:0',
      RUST_LOG: 'info',
      NO_COLOR: '1',
    });
    const lateMetrics = (await lateRec.waitFor(/metrics on \/metrics bound=(127\.0\.0\.1:\d+)/))[1];
    await d.page.waitForSelector('.badge.recording-hold', { state: 'detached', timeout: 30_000 });
    const flowing = await waitFor(async () => {
      const s = await sending(d.page);
      return { ok: s.encrypted > 50 && s.bytesSent > held.bytesSent + 20_000, ...s };
    }, { timeoutMs: 20_000 });
    assert.ok(flowing.ok, `media flows once the recorder receives it: ${JSON.stringify(flowing)}`);
    const page = await waitFor(async () => {
      const m = await (await fetch(`http://${lateMetrics}/metrics`)).text();
      return metric(m, 'recorder_frames_decrypted_total') > 50 && m;
    }, { timeoutMs: 20_000 });
    assert.ok(page, 'the late recorder records the caller');
    assert.equal(metric(page, 'recorder_decrypt_failures_total'), 0, page);
    await d.context.close();
    devices.splice(devices.indexOf(d), 1);
    lateRec.process.kill('SIGTERM');
    assert.deepEqual(await lateRec.exited, { code: 0, signal: null }, lateRec.log().slice(-3000));
  });

  test('a_policy_signed_by_another_key_is_ignored_by_the_browser', { timeout: 60_000 }, async () => {
    // The room's policy names the recorder, but an admin key this page does not trust signed it.
    const c = await openDevice(chromium, dev.http, rogueRoom, 'carol', { name: 'Carol', params: { admin_key: adminKey } });
    devices.push(c);
    await c.page.waitForSelector('.badge.recorded');
    const badge = await c.page.evaluate(() => {
      const el = document.querySelector('.badge.recorded');
      return { text: el.textContent, unverified: el.classList.contains('unverified') };
    });
    assert.deepEqual(badge, { text: 'Recorded', unverified: true }, 'no "kept N days": the policy is not believed');
    // The recorder, trusting only the admin's key, refuses the room from the event signaling sent
    // when Carol made it active: it never joins, so nothing of the room reaches it.
    const page = await waitFor(async () => {
      const m = await metrics();
      return metric(m, 'recorder_rooms_refused_total{reason="untrusted_policy"}') > 0 && m;
    }, { timeoutMs: 20_000 });
    assert.ok(page, 'the recorder counts the room it refused');
    assert.equal(metric(page, 'recorder_active_sessions'), 0, page);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const state = await c.page.evaluate(() => ({
      warnings: window.__call.state.warnings.map((w) => `${w.kind}: ${w.text}`),
      recipients: window.__call.keys?.recipients().map((x) => x.device) ?? [],
      roster: [...(window.__call.keys?.roster.keys() ?? [])],
    }));
    assert.ok(state.warnings.some((w) => w.startsWith('recording-policy:') && /does not trust/.test(w)), JSON.stringify(state.warnings));
    assert.ok(!state.roster.includes('rec-web'), `the recorder never joined: ${JSON.stringify(state)}`);
    assert.ok(!state.recipients.includes('rec-web'), `no key wrapped to the recorder: ${JSON.stringify(state)}`);
    assert.equal(metric(await metrics(), 'recorder_decrypt_failures_total'), 0, 'nothing of the room reached the recorder');
    await c.context.close();
    devices.splice(devices.indexOf(c), 1);
    await waitFor(async () => metric(await metrics(), 'recorder_active_sessions') === 0, { timeoutMs: 30_000 });
  });

  test('two_browsers_in_a_recorded_room_are_exported_playable_with_their_tone', { timeout: 180_000 }, async () => {
    // No frame may fail to decrypt here (counted from now, whatever came before).
    const failuresBefore = metric(await metrics(), 'recorder_decrypt_failures_total');
    const a = await openDevice(chromium, dev.http, room, 'alice', { name: 'Alice', params: { admin_key: adminKey } });
    devices.push(a);
    const b = await openDevice(chromium, dev.http, room, 'bob', { name: 'Bob', params: { admin_key: adminKey } });
    devices.push(b);
    for (const d of [a, b]) {
      await d.page.waitForSelector('.badge.recorded');
      assert.equal(await d.page.textContent('.badge.recorded'), `Recorded · kept ${RETENTION_DAYS} days`, `${d.identity}'s badge`);
    }
    // The recorder is in the room and each page wrapped its key to it.
    const wrapped = await waitFor(async () => {
      const r = await Promise.all([a, b].map((d) => d.page.evaluate(() => window.__call.keys?.recipients().map((x) => x.device) ?? [])));
      return { ok: r.every((x) => x.includes('rec-web')), r };
    }, { timeoutMs: 20_000 });
    assert.ok(wrapped.ok, `keys wrapped to the recorder: ${JSON.stringify(wrapped.r)}`);
    await sleep(CALL_MS);
    await a.page.screenshot({ path: artifact('recorded-call.png') });
    const during = await metrics();
    assert.ok(metric(during, 'recorder_frames_decrypted_total') > 0, during);
    assert.equal(metric(during, 'recorder_decrypt_failures_total') - failuresBefore, 0, during);
    for (const d of [a, b]) {
      await d.context.close();
      devices.splice(devices.indexOf(d), 1);
    }
    // Alone: the recorder finishes the session by itself; then SIGTERM.
    await waitFor(async () => metric(await metrics(), 'recorder_active_sessions') === 0, { timeoutMs: 30_000 });
    rec.process.kill('SIGTERM');
    const exit = await rec.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, rec.log().slice(-3000));

    // Verify, export.
    const verify = spawnSync(RECORDER_BIN, ['verify', '--archive-dir', f('archive'), '--state-dir', f('state')], { encoding: 'utf8' });
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
    let manifest;
    let out;
    for (const session of readdirSync(f('archive/sessions'))) {
      const o = f(`export-${session}`);
      run(RECORDER_BIN, ['export', '--identity', f('org.key'), '--archive-dir', f('archive'), '--state-dir', f('state'), session, o]);
      const m = JSON.parse(readFileSync(join(o, 'manifest.json'), 'utf8'));
      if (m.room === room) [manifest, out] = [m, o];
    }
    assert.ok(manifest, `a session of ${room}`);
    const figures = [];
    for (const d of [a, b]) {
      const tracks = manifest.tracks.filter((t) => t.device === d.device);
      for (const [kind, codec] of [['audio', 'opus'], ['video', 'vp8']]) {
        const t = tracks.find((x) => x.kind === kind);
        assert.ok(t, `${d.identity}'s ${kind} recorded: ${JSON.stringify(manifest.tracks.map((x) => [x.device, x.kind]))}`);
        for (const file of t.files) {
          const webm = join(out, file.name.replace(/\.age$/, ''));
          const probe = JSON.parse(run('ffprobe', ['-v', 'error', '-count_packets', '-show_entries', 'stream=codec_name,width,height,nb_read_packets:format=duration', '-of', 'json', webm]));
          assert.equal(probe.streams.length, 1);
          assert.equal(probe.streams[0].codec_name, codec, webm);
          const duration = Number(probe.format.duration);
          assert.ok(duration >= CALL_MS / 1000 - 2 && duration <= CALL_MS / 1000 + 15, `${webm}: ${duration} s for a ${CALL_MS} ms call`);
          // Every frame decodes.
          const decode = spawnSync('ffmpeg', ['-v', 'error', '-i', webm, '-f', 'null', '-'], { encoding: 'utf8' });
          assert.equal(decode.status, 0, decode.stderr);
          assert.equal(decode.stderr.trim(), '', `${webm} decodes without an error`);
          // The picture sizes decoded (the track's header has the first keyframe's; the SFU may
          // move the recorder to a larger layer later).
          const sizes = kind === 'video' ? [...new Set(run('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_entries', 'frame=width,height', '-of', 'csv=p=0', webm]).trim().split('\n'))].join(' ') : '';
          let hz = null;
          if (kind === 'audio') {
            const pcm = execFileSync('ffmpeg', ['-v', 'error', '-i', webm, '-f', 's16le', '-ac', '1', '-ar', '48000', '-'], { maxBuffer: 64 << 20 });
            hz = dominantFrequency(pcm, 48000);
            assert.ok(Math.abs(hz - TONE_HZ) <= 15, `${webm}: dominant ${hz} Hz`);
          }
          figures.push(`${d.identity} ${kind}: ${codec} ${probe.streams[0].width ?? ''}x${probe.streams[0].height ?? ''} ${probe.streams[0].nb_read_packets} packets, ${duration.toFixed(2)} s${hz ? `, ${hz} Hz` : ''}${sizes ? `, decoded sizes ${sizes}` : ''}`);
        }
      }
    }
    console.log(figures.join('\n'));
  });

});
