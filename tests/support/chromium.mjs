// Debian's Chromium, headless, driven by puppeteer-core (which downloads no browser), for the
// tests of what a person sees (tests/browser/). scripts/setup.sh --browser installs it.
//
//   const c = await launchChromium();  c.browser, c.page, await c.shot('name'), await c.close()
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './worker.mjs';

export const CHROMIUM = process.env.EDGEGUARD_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = path.join(REPO_ROOT, 'build', 'screenshots');

/** Why the browser tests cannot run here, or null. */
export function chromiumMissing() {
  return fs.existsSync(CHROMIUM) ? null : `no Chromium at ${CHROMIUM}: run scripts/setup.sh --browser`;
}

/** A fresh profile and page; screenshots land in build/screenshots/. */
export async function launchChromium() {
  const { default: puppeteer } = await import('puppeteer-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeguard-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    // No background networking: this machine's network is closed and Chromium would keep trying.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  const page = await browser.newPage();
  fs.mkdirSync(SHOTS, { recursive: true });
  return {
    browser,
    page,
    shot: (name) => page.screenshot({ path: path.join(SHOTS, `${name}.png`) }),
    async close() {
      await browser.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}
