// The operator console in real headless Firefox (Debian's firefox-esr), driven by puppeteer-core
// over WebDriver BiDi: listen, status, push to talk. Started by tests/e2e/firefox_check.py
// (inside a loopback-only network namespace, with the demo already running) as
//
//     node tests/e2e/firefox_flow.mjs '{"url": …, "email": …, "password": …,
//       "boardName": …, "rigctldPort": …, "profile": DIR, "screenshot": PNG}'
//
// It signs in, chooses the station, measures the inbound audio (`packetsReceived` over ~2 s,
// `audioLevel` > 0), reads the rendered status (#freq, #smeter), holds #ptt with the mouse for
// ~1.5 s and reads the rig's PTT from rigctld on its own TCP connection while held and after
// the release, keys and releases with the space bar the same way, and takes a screenshot.
// It prints one JSON line (`ok` false and `failure` say where it stopped) and always closes
// Firefox. Every wait is bounded.

import net from "node:net";
import puppeteer from "puppeteer-core";

const FIREFOX = "/usr/bin/firefox-esr";
// The prefs WebRTC needs in Firefox (ESR 153) on a loopback-only machine without a sound
// card: candidates on loopback and unobfuscated, a mock audio backend (without one the
// AudioContext stays suspended and sends silence), a fake microphone with no permission
// prompt, and playback without a user gesture (as the Chromium check's autoplay flag).
const PREFS = {
  "media.peerconnection.ice.loopback": true,
  "media.peerconnection.ice.obfuscate_host_addresses": false,
  "media.cubeb.force_mock_context": true,
  "media.navigator.streams.fake": true,
  "media.navigator.permission.disabled": true,
  "media.autoplay.default": 0,
  "media.autoplay.block-webaudio": false,
};
const VIEWPORT = { width: 1280, height: 1150 };
const POLL_MS = 50;
const DEFAULT_WAIT_MS = 10_000;
const STATS_WINDOW_MS = 2_000;
const PTT_HOLD_MS = 1_500;
// The agent polls the rig at 5 Hz and reports a change at once (well under 1 s when idle);
// status comes every second. Generous: the machine may be busy.
const RIG_WAIT_MS = 5_000;
const RIGCTLD_TIMEOUT_MS = 1_000;
const RIGCTLD_ATTEMPTS = 3;

const INBOUND_AUDIO = async () => {
  const pc = window.radiocore && window.radiocore.pc;
  if (!pc) return null;
  const report = await pc.getStats();
  let found = null;
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") {
      found = { packetsReceived: s.packetsReceived ?? 0, audioLevel: s.audioLevel ?? null };
    }
  });
  return found;
};

/** What the page shows about the station and transmitting. */
const VIEW = () => {
  const text = (id) => {
    const element = document.getElementById(id);
    return element ? element.textContent.trim() : null;
  };
  const rc = window.radiocore;
  return {
    state: rc.state,
    ptt: rc.ptt,
    status_ptt: rc.lastStatus ? rc.lastStatus.ptt : null,
    tx_indicator: text("tx-indicator"),
    ptt_text: text("ptt"),
    ptt_pressed: document.getElementById("ptt").getAttribute("aria-pressed"),
    conn_state: text("conn-state"),
  };
};

/**
 * @param {number} ms
 * @returns {Promise<void>}
 */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class StepError extends Error {}

/**
 * Calls `probe()` until it returns something truthy, at most `timeoutMs`; returns that. Waits
 * poll `page.evaluate` here rather than use `page.waitForFunction`, which the console's
 * Content-Security-Policy (no 'unsafe-eval') may refuse to run in the page.
 * @template T
 * @param {string} description
 * @param {() => Promise<T>} probe
 * @param {number} [timeoutMs]
 * @returns {Promise<T>}
 */
async function waitFor(description, probe, timeoutMs = DEFAULT_WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() >= deadline) throw new StepError(`${description}: not within ${timeoutMs} ms`);
    await sleep(POLL_MS);
  }
}

/**
 * The rig's PTT as rigctld reports it (`+t`, Hamlib's extended protocol), on a new connection;
 * a connection reset before the answer is tried again (at most `RIGCTLD_ATTEMPTS` in all): on
 * a loaded machine rigctld has reset one (read ECONNRESET) while the rig was fine.
 * @param {number} port
 * @returns {Promise<number>}
 */
async function rigPtt(port) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await rigPttOnce(port);
    } catch (error) {
      const reset = error instanceof StepError && error.message.includes("ECONNRESET");
      if (!reset || attempt >= RIGCTLD_ATTEMPTS) throw error;
    }
  }
}

/**
 * One reading of the rig's PTT (`rigPtt`).
 * @param {number} port
 * @returns {Promise<number>}
 */
function rigPttOnce(port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    let reply = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new StepError(`rigctld on ${port} did not answer within ${RIGCTLD_TIMEOUT_MS} ms`));
    }, RIGCTLD_TIMEOUT_MS);
    socket.setEncoding("utf8");
    socket.on("connect", () => socket.write("+t\n"));
    socket.on("data", (chunk) => {
      reply += chunk;
      const end = reply.match(/RPRT (-?\d+)/);
      if (!end) return;
      clearTimeout(timer);
      socket.end();
      const ptt = reply.match(/PTT: (\d+)/);
      if (end[1] === "0" && ptt) resolve(Number(ptt[1]));
      else reject(new StepError(`rigctld answered ${JSON.stringify(reply)}`));
    });
    socket.on("error", (error) => {
      clearTimeout(timer);
      reject(new StepError(`rigctld on ${port}: ${error.message}`));
    });
  });
}

/**
 * Waits until rigctld reports PTT `wanted`; returns the milliseconds it took.
 * @param {number} port
 * @param {number} wanted
 * @param {string} description
 * @returns {Promise<number>}
 */
async function waitRig(port, wanted, description) {
  const started = Date.now();
  await waitFor(description, async () => (await rigPtt(port)) === wanted, RIG_WAIT_MS);
  return Date.now() - started;
}

/**
 * @param {import("puppeteer-core").Page} page
 * @param {Record<string, unknown>} config
 * @param {Record<string, unknown>} result
 */
async function signInAndJoin(page, config, result) {
  const started = Date.now();
  await page.goto(String(config.url), { waitUntil: "load", timeout: DEFAULT_WAIT_MS });
  await waitFor("the console page", () =>
    page.evaluate(() => window.radiocore !== undefined && window.radiocore.state === "signed-out"),
  );
  await page.type("#email", String(config.email));
  await page.type("#password", String(config.password));
  await page.click("#login-submit");
  // the station's button, enabled once the station shows online
  const boardName = String(config.boardName);
  await waitFor("the station's button, enabled", () =>
    page.evaluate((name) => {
      const buttons = [...document.querySelectorAll("#boards button")];
      return buttons.some((b) => b.textContent.includes(name) && !b.disabled);
    }, boardName),
  );
  const buttons = await page.$$("#boards button");
  let clicked = false;
  for (const button of buttons) {
    const text = await button.evaluate((b) => b.textContent);
    if (!clicked && text.includes(boardName)) {
      await button.click();
      clicked = true;
    }
    await button.dispose();
  }
  if (!clicked) throw new StepError(`no button for ${boardName} in #boards`);
  await waitFor("the page connected", () =>
    page.evaluate(() => window.radiocore.state === "connected"),
  );
  result.connected_ms = Date.now() - started;
}

/**
 * @param {import("puppeteer-core").Page} page
 * @param {Record<string, unknown>} result
 */
async function measureListening(page, result) {
  const first = await waitFor("inbound audio packets", async () => {
    const stats = await page.evaluate(INBOUND_AUDIO);
    return stats && stats.packetsReceived > 0 ? stats : null;
  });
  result.packets_first = first.packetsReceived;
  const started = Date.now();
  let level = first.audioLevel ?? 0;
  let later = first;
  while (Date.now() - started < STATS_WINDOW_MS) {
    await sleep(200);
    later = (await page.evaluate(INBOUND_AUDIO)) ?? later;
    level = Math.max(level, later.audioLevel ?? 0);
  }
  result.packets_later = later.packetsReceived;
  result.packets_window_s = Math.round((Date.now() - started) / 10) / 100;
  if (level <= 0) {
    // playout may start a little after the first packets
    level = await waitFor(
      "audioLevel > 0",
      async () => ((await page.evaluate(INBOUND_AUDIO)) ?? {}).audioLevel ?? 0,
      5_000,
    );
  }
  result.audio_level = level;
  result.audio_element = await page.evaluate(() => {
    const audio = document.getElementById("rx-audio");
    return { paused: audio.paused, muted: audio.muted, hasStream: audio.srcObject !== null };
  });
}

/**
 * @param {import("puppeteer-core").Page} page
 * @param {Record<string, unknown>} result
 */
async function readStatus(page, result) {
  await waitFor("two status messages", () =>
    page.evaluate(() => window.radiocore.statusCount >= 2),
  );
  // the page renders a status as it arrives: read it and what it shows in one round trip
  const shown = await page.evaluate(() => ({
    last_status: window.radiocore.lastStatus,
    freq_text: document.getElementById("freq").textContent.trim(),
    smeter_text: document.getElementById("smeter").textContent.trim(),
    conn_state_text: document.getElementById("conn-state").textContent.trim(),
    tx_text: document.getElementById("tx-indicator").textContent.trim(),
  }));
  Object.assign(result, shown);
}

/**
 * @param {import("puppeteer-core").Page} page
 * @param {boolean} keyed
 * @param {string} description
 */
async function waitKeyed(page, keyed, description) {
  await waitFor(
    description,
    () =>
      page.evaluate(
        (want) =>
          window.radiocore.ptt === want &&
          window.radiocore.lastStatus !== null &&
          window.radiocore.lastStatus.ptt === want &&
          document.getElementById("tx-indicator").textContent.trim() === (want ? "TX" : "RX"),
        keyed,
      ),
    RIG_WAIT_MS,
  );
}

/**
 * @param {import("puppeteer-core").Page} page
 * @param {Record<string, unknown>} config
 * @param {Record<string, unknown>} result
 */
async function holdPttButton(page, config, result) {
  const port = Number(config.rigctldPort);
  const hold = {};
  result.ptt_hold = hold;
  await waitFor("#ptt enabled with the floor free", () =>
    page.evaluate(
      () => !document.getElementById("ptt").disabled && window.radiocore.floor === null,
    ),
  );
  hold.rig_before = await rigPtt(port);
  const button = await page.$("#ptt");
  if (button === null) throw new StepError("no #ptt button");
  await button.scrollIntoView();
  const box = await button.boundingBox();
  await button.dispose();
  if (box === null) throw new StepError("#ptt is not visible");
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  const pressedAt = Date.now();
  await page.mouse.down();
  try {
    await waitKeyed(page, true, "the page and the station's status keyed while #ptt is held");
    hold.keyed_view = await page.evaluate(VIEW);
    hold.rig_keyed_ms = await waitRig(port, 1, "rigctld PTT 1 while #ptt is held");
    hold.rig_keyed = await rigPtt(port);
    await page.screenshot({ path: String(config.screenshot) });
    result.screenshot = config.screenshot;
    const remaining = PTT_HOLD_MS - (Date.now() - pressedAt);
    if (remaining > 0) await sleep(remaining);
    hold.rig_still_keyed = await rigPtt(port);
    hold.held_ms = Date.now() - pressedAt;
  } finally {
    await page.mouse.up();
  }
  await waitKeyed(page, false, "the page and the station's status unkeyed after the release");
  hold.released_view = await page.evaluate(VIEW);
  hold.rig_unkeyed_ms = await waitRig(port, 0, "rigctld PTT 0 after the release");
  hold.rig_released = await rigPtt(port);
}

/**
 * @param {import("puppeteer-core").Page} page
 * @param {Record<string, unknown>} config
 * @param {Record<string, unknown>} result
 */
async function spaceBarPtt(page, config, result) {
  const port = Number(config.rigctldPort);
  const space = {};
  result.space_bar = space;
  // the space bar keys outside text entry: take the focus off the button clicked last
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.keyboard.down(" "); // in puppeteer's Firefox the key is " ", not "Space"
  try {
    await waitKeyed(page, true, "the page and the station's status keyed by the space bar");
    space.keyed_view = await page.evaluate(VIEW);
    space.rig_keyed_ms = await waitRig(port, 1, "rigctld PTT 1 with the space bar down");
    space.rig_keyed = await rigPtt(port);
  } finally {
    await page.keyboard.up(" ");
  }
  await waitKeyed(page, false, "the page and the station's status unkeyed by the key-up");
  space.released_view = await page.evaluate(VIEW);
  space.rig_unkeyed_ms = await waitRig(port, 0, "rigctld PTT 0 after the key-up");
  space.rig_released = await rigPtt(port);
}

async function main() {
  const config = JSON.parse(process.argv[2] ?? "{}");
  /** @type {Record<string, unknown>} */
  const result = { ok: false, failure: null, console_errors: [] };
  const consoleErrors = /** @type {string[]} */ (result.console_errors);
  /** @type {Record<string, number>} milliseconds per step */
  const timings = {};
  result.timings_ms = timings;
  timings.node_start = Math.round(performance.now()); // Node itself and puppeteer-core's import
  let browser = null;
  let step = "launch";
  try {
    const launchedAt = Date.now();
    browser = await puppeteer.launch({
      browser: "firefox",
      protocol: "webDriverBiDi",
      executablePath: FIREFOX,
      headless: true,
      userDataDir: String(config.profile),
      extraPrefsFirefox: PREFS,
      defaultViewport: VIEWPORT,
      timeout: 30_000, // ~2.5 s on an idle machine, 18 s seen under a heavy load
      protocolTimeout: 15_000,
    });
    timings.launch = Date.now() - launchedAt;
    const versionAt = Date.now();
    result.browser_version = await browser.version();
    timings.version = Date.now() - versionAt;
    const pageAt = Date.now();
    // the tab Firefox opened at launch
    const page = (await browser.pages())[0] ?? (await browser.newPage());
    timings.page = Date.now() - pageAt;
    page.setDefaultTimeout(DEFAULT_WAIT_MS);
    page.on("console", (message) => {
      if (message.type() === "error") consoleErrors.push(message.text());
    });
    page.on("pageerror", (error) => consoleErrors.push(`uncaught: ${error.message ?? error}`));

    const steps = [
      ["sign in and join", () => signInAndJoin(page, config, result)],
      ["listen", () => measureListening(page, result)],
      ["status", () => readStatus(page, result)],
      ["PTT button", () => holdPttButton(page, config, result)],
      ["space bar", () => spaceBarPtt(page, config, result)],
    ];
    for (const [name, run] of steps) {
      step = name;
      const started = Date.now();
      await run();
      timings[name] = Date.now() - started;
    }
    result.errors = await page.evaluate(() =>
      [...document.querySelectorAll("#error-list li")].map((li) => li.textContent.trim()),
    );
    result.state = await page.evaluate(() => window.radiocore.state);
    result.ok = true;
  } catch (error) {
    result.failure = `${step}: ${error instanceof Error ? error.message : String(error)}`
      .split("\n")[0]
      .slice(0, 2000);
  } finally {
    if (browser !== null) {
      const closingAt = Date.now();
      const closing = browser.close().catch(() => undefined);
      const closed = await Promise.race([
        closing.then(() => true),
        sleep(10_000).then(() => false),
      ]);
      if (!closed) browser.process()?.kill("SIGKILL");
      timings.close = Date.now() - closingAt;
    }
  }
  timings.total = Math.round(performance.now());
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return result.ok ? 0 : 1;
}

process.exitCode = await main();
