/**
 * Opens an HTML file in headless Chromium and inspects it through the DevTools protocol, spoken
 * over `--remote-debugging-pipe` (JSON messages separated by NUL on file descriptors 3 and 4): no
 * WebSocket client and no browser download needed. Used by the report's browser test and for
 * the load-time measurement of issue 16.
 *
 * @example
 * const r = await openInBrowser(chromium, 'report.html', { screenshot: 'test-artifacts/report.png' });
 * r.errors; // console errors, exceptions, failed loads
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** The Chromium binary on PATH, or null; `SEGTENSOR_TEST_CHROMIUM` names another (empty: none). */
export function findChromium(): string | null {
  const forced = process.env.SEGTENSOR_TEST_CHROMIUM;
  if (forced !== undefined) return forced && fs.existsSync(forced) ? forced : null;
  for (const name of ['chromium', 'chromium-browser']) {
    const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  return null;
}

type Message = { id?: number; method?: string; params?: Record<string, unknown>; result?: Record<string, unknown>; error?: { message: string }; sessionId?: string };

class Pipe {
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  private buffer = '';
  private listeners: ((m: Message) => void)[] = [];

  constructor(private readonly child: ChildProcess) {
    const out = child.stdio[4] as NodeJS.ReadableStream;
    out.setEncoding('utf8');
    out.on('data', (chunk: string) => {
      this.buffer += chunk;
      let at: number;
      while ((at = this.buffer.indexOf('\0')) >= 0) {
        const msg = JSON.parse(this.buffer.slice(0, at)) as Message;
        this.buffer = this.buffer.slice(at + 1);
        if (msg.id !== undefined && this.pending.has(msg.id)) {
          const p = this.pending.get(msg.id)!;
          this.pending.delete(msg.id);
          if (msg.error) p.reject(new Error(`CDP: ${msg.error.message}`));
          else p.resolve(msg.result ?? {});
        } else for (const l of this.listeners) l(msg);
      }
    });
    child.on('exit', () => {
      for (const p of this.pending.values()) p.reject(new Error('CDP: the browser exited'));
      this.pending.clear();
    });
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    const msg = JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) });
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      (this.child.stdio[3] as NodeJS.WritableStream).write(msg + '\0');
    });
  }

  on(l: (m: Message) => void): void {
    this.listeners.push(l);
  }
}

/** Marks drawn in one chart container: `<mark name>` → items. */
export interface ChartMarks {
  kind: 'svg' | 'canvas' | 'none';
  /** SVG: it holds shapes; canvas: it holds non-white pixels. */
  drawn: boolean;
  /** Width × height of the SVG or canvas in CSS pixels. */
  area: number;
  marks: Record<string, number>;
}

export interface BrowserResult {
  /** Console errors, uncaught exceptions, failed loads, and requests for anything but the file itself. */
  errors: string[];
  /** Console warnings (reported, not failures). */
  warnings: string[];
  /** Every URL the page requested. */
  requests: string[];
  /** Whether the page said all its charts were drawn. */
  ready: boolean;
  /** ms from navigation start: the load event (navigation timing), and all charts drawn (the page's own record). */
  loadMs: number | null;
  drawnMs: number | null;
  charts: Record<string, ChartMarks>;
  /** The value of `probe`, an expression evaluated in the page at the end. */
  probe?: unknown;
}

/**
 * In the page: each chart's marks by name. An SVG chart is counted in its DOM (Vega puts the mark
 * name in each mark group's class); a canvas chart in the scenegraph of its Vega view, and the
 * canvas must hold drawn (non-white) pixels.
 */
const COUNT_MARKS = `(() => {
  const out = {};
  const walk = (node, marks) => {
    if (node.marktype) {
      if (node.role === 'mark' && node.name) marks[node.name] = (marks[node.name] || 0) + node.items.length;
      for (const item of node.items) walk(item, marks);
    } else if (node.items) for (const mark of node.items) walk(mark, marks);
  };
  for (const el of document.querySelectorAll('.chart')) {
    const svg = el.querySelector('svg');
    const canvas = el.querySelector('canvas');
    const marks = {};
    let drawn = false;
    if (svg) {
      for (const g of svg.querySelectorAll('g.role-mark')) {
        const name = [...g.classList].find((c) => !c.startsWith('mark-') && !c.startsWith('role-')) || '(unnamed)';
        marks[name] = (marks[name] || 0) + g.childElementCount;
      }
      drawn = svg.querySelectorAll('path, line, rect, text').length > 0;
    } else if (canvas) {
      const view = window.__report && window.__report.views[el.dataset.chart];
      if (view) walk(view.scenegraph().root, marks);
      const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let ink = 0;
      for (let i = 0; i < px.length; i += 4) if (px[i + 3] > 0 && (px[i] < 240 || px[i + 1] < 240 || px[i + 2] < 240)) ink++;
      drawn = ink > 100;
    }
    const box = (svg || canvas || el).getBoundingClientRect();
    out[el.dataset.chart] = { kind: svg ? 'svg' : canvas ? 'canvas' : 'none', drawn, area: box.width * box.height, marks };
  }
  return out;
})()`;

/** A headless Chromium, started once, that opens pages. Close it in a `finally`. */
export interface Browser {
  /** Opens `file` in a new tab, waits until the page reports its charts drawn (or `timeoutMs`), counts the marks, optionally saves a full-page screenshot, and closes the tab. */
  open(file: string, o?: OpenOptions): Promise<BrowserResult>;
  close(): Promise<void>;
}

export interface OpenOptions {
  screenshot?: string;
  timeoutMs?: number;
  width?: number;
  /** An expression evaluated in the page at the end; its value comes back as `probe`. */
  probe?: string;
}

/** Starts headless Chromium on a fresh profile, speaking CDP over a pipe. */
export async function launchBrowser(chromium: string): Promise<Browser> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-chromium-'));
  const child = spawn(
    chromium,
    ['--headless=new', '--disable-gpu', '--no-sandbox', '--remote-debugging-pipe', '--no-first-run', '--no-default-browser-check', '--disable-extensions', '--disable-background-networking', '--disable-dev-shm-usage', `--user-data-dir=${profile}`, 'about:blank'],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const cdp = new Pipe(child);
  const listeners = new Map<string, (m: Message) => void>();
  cdp.on((m) => m.sessionId && listeners.get(m.sessionId)?.(m));

  async function open(file: string, o: OpenOptions = {}): Promise<BrowserResult> {
    const url = pathToFileURL(path.resolve(file)).href;
    const errors: string[] = [];
    const warnings: string[] = [];
    const requests: string[] = [];
    let loaded!: () => void;
    const loadFired = new Promise<void>((r) => (loaded = r));
    const { targetId } = (await cdp.send('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
    const { sessionId } = (await cdp.send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string };
    listeners.set(sessionId, (m) => {
      const p = (m.params ?? {}) as Record<string, any>;
      switch (m.method) {
        case 'Runtime.consoleAPICalled': {
          const text = (p.args ?? []).map((a: any) => a.value ?? a.description ?? '').join(' ');
          if (p.type === 'error' || p.type === 'assert') errors.push(`console.${p.type}: ${text}`);
          else if (p.type === 'warning') warnings.push(text);
          break;
        }
        case 'Runtime.exceptionThrown':
          errors.push(`exception: ${p.exceptionDetails?.exception?.description ?? p.exceptionDetails?.text}`);
          break;
        case 'Log.entryAdded':
          if (p.entry?.level === 'error') errors.push(`log: ${p.entry.text} ${p.entry.url ?? ''}`);
          break;
        case 'Network.requestWillBeSent':
          requests.push(p.request?.url);
          if (p.request?.url !== url && !String(p.request?.url).startsWith('data:')) errors.push(`request for ${p.request?.url}: the report must load nothing`);
          break;
        case 'Network.loadingFailed':
          errors.push(`failed load: ${p.errorText} (${p.type})`);
          break;
        case 'Page.loadEventFired':
          loaded();
          break;
      }
    });
    try {
      const s = (method: string, params: Record<string, unknown> = {}) => cdp.send(method, params, sessionId);
      await Promise.all([s('Page.enable'), s('Runtime.enable'), s('Log.enable'), s('Network.enable')]);
      await s('Emulation.setDeviceMetricsOverride', { width: o.width ?? 1280, height: 900, deviceScaleFactor: 1, mobile: false });
      await s('Page.navigate', { url });
      const timeout = o.timeoutMs ?? 20_000;
      const deadline = Date.now() + timeout;
      await Promise.race([loadFired, new Promise((r) => setTimeout(r, timeout))]);
      const evaluate = async (expression: string) => ((await s('Runtime.evaluate', { expression, returnByValue: true })) as { result: { value: any } }).result.value;
      let ready = false;
      while (Date.now() < deadline) {
        ready = Boolean(await evaluate('Boolean(window.__report && window.__report.ready)'));
        if (ready || errors.length) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      // The load event from the navigation timing; the drawing from the page's own record.
      const times = await evaluate("({ loadMs: (performance.getEntriesByType('navigation')[0] || {}).loadEventStart || null, drawnMs: window.__report ? window.__report.drawnMs : null })");
      const charts = await evaluate(COUNT_MARKS);
      const probe = o.probe ? await evaluate(o.probe) : undefined;
      if (o.screenshot) {
        const m = (await s('Page.getLayoutMetrics')) as { cssContentSize: { width: number; height: number } };
        const { data } = (await s('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true, clip: { x: 0, y: 0, width: m.cssContentSize.width, height: m.cssContentSize.height, scale: 1 } })) as { data: string };
        fs.mkdirSync(path.dirname(o.screenshot), { recursive: true });
        fs.writeFileSync(o.screenshot, Buffer.from(data, 'base64'));
      }
      return { errors, warnings, requests, ready, loadMs: times?.loadMs ?? null, drawnMs: times?.drawnMs ?? null, charts, probe };
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${stderr}`);
    } finally {
      listeners.delete(sessionId);
      await cdp.send('Target.closeTarget', { targetId }).catch(() => {});
    }
  }

  async function close(): Promise<void> {
    // Browser.close lets Chromium end its own helper processes; SIGKILL (this child only) if it hangs.
    const exited = new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
    await Promise.race([cdp.send('Browser.close').catch(() => {}), new Promise((r) => setTimeout(r, 3000))]);
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
    fs.rmSync(profile, { recursive: true, force: true });
  }

  return { open, close };
}

/** Opens one file in a browser of its own (a cold start, as a user opening the file). */
export async function openInBrowser(chromium: string, file: string, o: OpenOptions = {}): Promise<BrowserResult> {
  const b = await launchBrowser(chromium);
  try {
    return await b.open(file, o);
  } finally {
    await b.close();
  }
}
