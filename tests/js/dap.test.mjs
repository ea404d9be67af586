// Issue #22, part 2: reports made by the browsers' DAP stack are the
// reports insitu-aggregate verifies and sums. The golden measurements of
// crates/aggregate/tests/fixtures are sharded by `@divviup/prio3` 0.8 (the
// VDAF-08 Prio3 of `@divviup/dap` 0.9), and uploaded by `@divviup/dap`'s
// own client to a leader and helper played here (their HPKE keys served,
// the upload captured and decrypted as each aggregator would); the
// aggregator (prio 0.16.8, also VDAF-08) prepares both shares of every
// report in one process, refuses tampered ones, and its sums equal the
// plain sums of the measurements. Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Task, HpkeConfig } from "@divviup/dap";
import { Prio3SumVec } from "@divviup/prio3";
import { AeadId, CipherSuite, KdfId, KemId } from "hpke-js";
import { aggregatorBinary as aggregator, MemoryStorage, open, rng } from "./helpers.mjs";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "../..");
const golden = JSON.parse(fs.readFileSync(path.join(root, "crates/aggregate/tests/fixtures/measurements.json"), "utf8"));


/** The golden cases' measurements (`nonzero` entries on zeros; the cases the encoder refuses have none). */
function measurements() {
  return golden.cases.filter((c) => c.nonzero !== undefined).map((c) => {
    const m = new Array(golden.prio3SumVec.length).fill(0);
    for (const [i, x] of Object.entries(c.nonzero)) m[Number(i)] = x;
    return m;
  });
}

const b64url = (b) => Buffer.from(b).toString("base64url");

/** The aggregator's report line of one Prio3 report, labelled as `labels` (default: the golden task's). */
function reportLine(nonce, publicShare, leaderShare, helperShare, labels = golden.spec) {
  const { task, period, key, segment } = labels;
  return {
    v: 1, task, period, key, ...(segment === undefined ? {} : { segment }),
    nonce: b64url(nonce), publicShare: b64url(publicShare), leaderShare: b64url(leaderShare), helperShare: b64url(helperShare),
  };
}

/** One report line, sharded by @divviup/prio3. */
async function line(vdaf, m) {
  const nonce = randomBytes(vdaf.nonceSize);
  const { publicShare, inputShares } = await vdaf.shardEncoded(m, nonce, randomBytes(vdaf.randSize));
  assert.equal(inputShares.length, 2);
  return reportLine(nonce, publicShare, inputShares[0], inputShares[1]);
}

/** `l` with one bit of its leader share flipped. */
function tampered(l) {
  const share = Buffer.from(l.leaderShare, "base64url");
  share[0] ^= 1;
  return { ...l, leaderShare: b64url(share) };
}

function run(lines, taskFile = golden.spec) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "insitu-dap-"));
  const spec = path.join(dir, "task.json");
  fs.writeFileSync(spec, JSON.stringify(taskFile));
  const r = spawnSync(aggregator(), ["aggregate", "--spec", spec, "--no-noise"], {
    input: lines.map((l) => JSON.stringify(l)).join("\n") + "\n",
    encoding: "utf8",
  });
  fs.rmSync(dir, { recursive: true });
  assert.equal(r.status, 0, r.stderr);
  return { sums: JSON.parse(r.stdout), summary: JSON.parse(r.stderr) };
}

test("reports sharded by @divviup/prio3 verify and sum to the plain sums in insitu-aggregate", { timeout: 120_000 }, async () => {
  const { bits, length, chunkLength } = golden.prio3SumVec;
  const vdaf = new Prio3SumVec({ shares: 2, length, chunkLength, bits });
  const ms = measurements();
  // Every golden case, three times each (fresh nonces and randomness).
  const lines = [];
  const plain = new Array(length).fill(0);
  for (let round = 0; round < 3; round++) {
    for (const m of ms) {
      lines.push(await line(vdaf, m));
      m.forEach((x, i) => (plain[i] += x));
    }
  }
  // A report whose leader share was changed after sharding: the proof fails.
  lines.splice(5, 0, tampered(await line(vdaf, ms[0])));

  const { sums, summary } = run(lines);
  assert.equal(sums.noise.mechanism, "none");
  assert.equal(sums.segments.length, 1);
  assert.deepEqual(sums.segments[0].sums, plain, "the aggregate of the shares is the plain sum");
  assert.equal(plain[0], 3 * ms.length, "the `reports` entry counts the accepted reports");
  const text = JSON.stringify(summary);
  assert.deepEqual(
    { lines: summary.lines, plain: summary.plain, prio: summary.prio, refused: summary.refused },
    { lines: lines.length, plain: 0, prio: 3 * ms.length, refused: { VERIFY_FAILED: 1 } },
    text,
  );
});

/** A reader of DAP's TLS-syntax encoding. */
class Reader {
  constructor(b) {
    this.b = b;
    this.at = 0;
  }
  take(n) {
    assert.ok(this.at + n <= this.b.length, "a truncated DAP message");
    return this.b.subarray(this.at, (this.at += n));
  }
  u8() {
    return this.take(1)[0];
  }
  opaque16() {
    return this.take(this.take(2).readUInt16BE(0));
  }
  opaque32() {
    return this.take(this.take(4).readUInt32BE(0));
  }
  done() {
    assert.equal(this.at, this.b.length, "trailing bytes in a DAP message");
  }
}

const opaque32 = (b) => {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
};

/**
 * Upload `measurements` with `@divviup/dap`'s own client to a leader and a
 * helper played in memory (their HPKE configurations served, nothing leaves
 * the process), and read each upload as the two aggregators would: the
 * report lines of `insitu-aggregate`, labelled as `labels`.
 */
async function throughDap({ bits, length, chunkLength }, measurements, labels = golden.spec) {
  const suite = new CipherSuite({ kem: KemId.DhkemX25519HkdfSha256, kdf: KdfId.HkdfSha256, aead: AeadId.Aes128Gcm });
  const roles = { leader: 2, helper: 3 };
  const keys = {};
  const lists = {};
  for (const [name, configId] of [["leader", 7], ["helper", 9]]) {
    keys[name] = await suite.kem.generateKeyPair();
    const pub = Buffer.from(await suite.kem.serializePublicKey(keys[name].publicKey));
    const config = new HpkeConfig(configId, KemId.DhkemX25519HkdfSha256, KdfId.HkdfSha256, AeadId.Aes128Gcm, pub).encode();
    const len = Buffer.alloc(2);
    len.writeUInt16BE(config.length);
    lists[name] = Buffer.concat([len, config]);
  }
  const id = randomBytes(32);
  const task = new Task({
    type: "sumVec", bits, length, chunkLength, id,
    leader: "https://leader.invalid/", helper: "https://helper.invalid/", timePrecisionSeconds: 3600,
  });
  const uploads = [];
  // The two aggregators' endpoints, in memory: nothing leaves the process.
  task.fetch = async (input, init = {}) => {
    const url = new URL(String(input));
    const name = url.hostname.split(".")[0];
    if (url.pathname === "/hpke_config") {
      assert.equal(url.searchParams.get("task_id"), id.toString("base64url"));
      return new Response(lists[name], { headers: { "content-type": "application/dap-hpke-config-list" } });
    }
    assert.equal(`${init.method} ${name} ${url.pathname}`, `PUT leader /tasks/${id.toString("base64url")}/reports`);
    assert.equal(init.headers["Content-Type"], "application/dap-report");
    uploads.push(Buffer.from(init.body));
    return new Response(null, { status: 201 });
  };
  for (const m of measurements) await task.sendMeasurement(m);
  assert.equal(uploads.length, measurements.length);

  // Each upload as the leader and the helper read it (DAP-09 Report): the
  // metadata, the public share, then one HPKE ciphertext per aggregator,
  // sealed to its key with the input-share info and the report's aad.
  const lines = [];
  for (const body of uploads) {
    const r = new Reader(body);
    const metadata = r.take(24);
    const publicShare = r.opaque32();
    const shares = {};
    for (const name of ["leader", "helper"]) {
      const configId = r.u8();
      assert.equal(configId, name === "leader" ? 7 : 9);
      const enc = r.opaque16();
      const ct = r.opaque32();
      const info = Buffer.concat([Buffer.from("dap-09 input share", "ascii"), Buffer.from([1, roles[name]])]);
      const aad = Buffer.concat([id, metadata, opaque32(publicShare)]);
      const plaintext = Buffer.from(await suite.open({ recipientKey: keys[name], enc, info }, ct, aad));
      const p = new Reader(plaintext);
      assert.equal(p.opaque16().length, 0, "no report extensions");
      shares[name] = p.opaque32();
      p.done();
    }
    r.done();
    lines.push(reportLine(metadata.subarray(0, 16), publicShare, shares.leader, shares.helper, labels));
  }
  return lines;
}

test("@divviup/dap's client uploads reports that insitu-aggregate verifies and sums", { timeout: 120_000 }, async () => {
  const ms = measurements();
  const plain = new Array(golden.prio3SumVec.length).fill(0);
  for (const m of ms) m.forEach((x, i) => (plain[i] += x));
  const lines = await throughDap(golden.prio3SumVec, ms);
  // One more upload, its leader share changed after the aggregator opened it.
  const { sums, summary } = run([...lines, tampered(lines[0])]);
  assert.deepEqual(sums.segments[0].sums, plain, "the aggregate of the uploaded shares is the plain sum");
  assert.deepEqual(
    { prio: summary.prio, refused: summary.refused },
    { prio: ms.length, refused: { VERIFY_FAILED: 1 } },
    JSON.stringify(summary),
  );
});

/**
 * The reports of `n` devices, each a site of its own that decides and
 * learns for a day (some far past the default bounds, so their reports are
 * clipped), then closes the period the next day.
 */
async function deviceReports(n, seed) {
  const random = rng(seed);
  const day = Date.UTC(2026, 11, 6);
  const reports = [];
  for (let i = 0; i < n; i++) {
    let now = day + 3_600_000;
    const segment = i % 3 === 0 ? "desktop" : "mobile";
    const site = open({
      storage: new MemoryStorage(), consent: "personalization", now: () => now, flushDelayMs: 60_000,
      onReport: (r) => reports.push(r), onError: (e) => assert.fail(e.message),
    });
    const slot = site.slot("hero", {
      variants: ["a", "b", "c", "d"], features: { allow: ["page"], bits: 4 },
      reports: { task: "shop-hero", segment },
    });
    const decisions = 1 + Math.floor(random() * (i % 4 === 0 ? 60 : 12));
    for (let t = 0; t < decisions; t++) {
      now += 1000;
      const d = slot.rank({ context: { page: { section: ["news", "sports", "tech"][Math.floor(random() * 3)], depth: random() * 5 } } });
      if (random() < 0.8) slot.reward({ decisionId: d.decisionId, reward: [0, 0.37, 1][Math.floor(random() * 3)] });
    }
    await site.flush();
    now += 86_400_000;
    await site.flush();
    site.close();
  }
  assert.equal(reports.length, n, "one report per device");
  return reports;
}

test("device reports, uploaded by @divviup/dap, verify and sum in insitu-aggregate to their plain sums, per segment", { timeout: 300_000 }, async () => {
  const reports = await deviceReports(12, 22);
  assert.ok(reports.some((r) => r.clipped.length > 0), "some devices were clipped to the bounds");
  const [first] = reports;
  const taskFile = { ...first.taskFile, segments: ["desktop", "mobile"] };
  for (const r of reports) assert.deepEqual({ ...r.taskFile, segments: taskFile.segments }, taskFile, "one task file for every device");
  const plain = {};
  const lines = [];
  for (const segment of ["desktop", "mobile"]) {
    const mine = reports.filter((r) => r.segment === segment);
    plain[segment] = new Array(first.vdaf.length).fill(0);
    for (const r of mine) r.measurement.forEach((x, i) => (plain[segment][i] += x));
    lines.push(...await throughDap(first.vdaf, mine.map((r) => r.measurement), { ...first.taskFile, segment }));
  }
  const viaDap = run(lines, taskFile);
  assert.deepEqual(viaDap.summary.refused, {}, JSON.stringify(viaDap.summary));
  const bySegment = (sums) => Object.fromEntries(sums.segments.map((x) => [x.segment, x.sums]));
  assert.deepEqual(bySegment(viaDap.sums), plain, "the aggregate of the shares is the plain sum of the device measurements");
  // The plain path: the same reports as the lines `onReport` gave.
  const viaLines = run(reports.map((r) => JSON.parse(r.line)), taskFile);
  assert.deepEqual(viaLines.summary.refused, {}, JSON.stringify(viaLines.summary));
  assert.deepEqual(bySegment(viaLines.sums), plain);
});
