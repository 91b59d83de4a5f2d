import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PanelController } from '../../../plugin-uxp/src/controller';
import { DocumentRecords } from '../../../plugin-uxp/src/identity';
import { PANEL_IDS, mountPanel, type PanelDocument, type PanelElement } from '../../../plugin-uxp/src/panel';
import { createSettingsStore } from '../../../plugin-uxp/src/settings';
import { FakeApi } from './fake-api';
import { FakePhotoshop } from './fake-photoshop';
import { gradient, pixels8 } from './fixtures';

interface StubElement extends PanelElement {
  tag: string;
  attrs: Record<string, string>;
  children: StubElement[];
  listeners: Record<string, ((e: unknown) => void)[]>;
  click(): void;
}

function stubElement(tag: string): StubElement {
  const e: StubElement = {
    tag,
    value: '',
    disabled: false,
    className: '',
    style: { display: '', width: '', paddingLeft: '' },
    attrs: {},
    children: [],
    listeners: {},
    get textContent() {
      return this.children.length ? this.children.map((c) => c.textContent).join('') : (this.attrs.$text ?? '');
    },
    set textContent(v: string | null) {
      this.children = [];
      this.attrs.$text = v ?? '';
    },
    setAttribute(n, v) {
      this.attrs[n] = v;
    },
    removeAttribute(n) {
      delete this.attrs[n];
    },
    addEventListener(t, f) {
      (this.listeners[t] ??= []).push(f);
    },
    appendChild(c) {
      this.children.push(c as StubElement);
    },
    click() {
      for (const f of this.listeners.click ?? []) f({});
    },
  };
  return e;
}

function stubDocument() {
  const byId = new Map<string, StubElement>(PANEL_IDS.map((id) => [id, stubElement(id)]));
  const doc: PanelDocument = { getElementById: (id) => byId.get(id) ?? null, createElement: (tag) => stubElement(tag) };
  return { doc, $: (id: (typeof PANEL_IDS)[number]) => byId.get(id)! };
}

const settle = () => new Promise((r) => setImmediate(r));

async function mounted() {
  const fake = new FakePhotoshop();
  const psDoc = fake.addDocument({ title: 'cat.psd', width: 16, height: 12, layers: [{ name: 'photo', pixels: pixels8(2, 2, 8, 6, gradient) }] });
  const api = new FakeApi();
  let n = 0;
  const controller = new PanelController({ host: fake, client: () => api, records: new DocumentRecords(fake, () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`, 's') });
  const { doc, $ } = stubDocument();
  const local = new Map<string, string>();
  const applied: unknown[] = [];
  mountPanel({
    document: doc,
    controller,
    settings: createSettingsStore({ getItem: (k) => local.get(k) ?? null, setItem: (k, v) => void local.set(k, v) }, null),
    onSettings: (s) => applied.push(s),
    allowedServers: ['http://localhost:7860', 'http://127.0.0.1:7860'],
  });
  await settle();
  return { fake, psDoc, api, controller, $, applied, local };
}

it('index.html defines every element the panel binds', () => {
  const html = readFileSync(join(__dirname, '../../../plugin-uxp/index.html'), 'utf8');
  const ids = new Set([...html.matchAll(/id="([^"]+)"/g)].map((m) => m[1]));
  expect(PANEL_IDS.filter((id) => !ids.has(id))).toEqual([]);
  expect(html).toContain('<script src="dist/index.js"></script>');
});

it('refuses to mount on a page that lacks elements', () => {
  const controller = {} as PanelController;
  const doc: PanelDocument = { getElementById: () => null, createElement: () => stubElement('div') };
  expect(() => mountPanel({ document: doc, controller, settings: createSettingsStore({ getItem: () => null, setItem: () => undefined }, null), onSettings: () => undefined, allowedServers: [] })).toThrow(/lacks element\(s\) instruction, apply/);
});

it('reads the form into an edit, shows progress, and lists the history', async () => {
  const { fake, psDoc, api, $, applied } = await mounted();
  expect(applied).toEqual([{ serverUrl: 'http://localhost:7860', token: '' }]);
  expect($('server-url').value).toBe('http://localhost:7860');
  expect($('advanced').style.display).toBe('none');
  expect($('cancel').style.display).toBe('none');

  $('instruction').value = 'make it red';
  $('spread').value = '25';
  $('strength').value = '60';
  $('locality').value = 'guidance';
  $('variations').value = '1';
  $('seed').value = '7';
  $('steps').value = '9';
  $('apply').click();
  expect($('apply').disabled).toBe(true);
  for (let i = 0; i < 50 && fake.stack(psDoc).length < 2; i++) await settle();
  await settle();
  expect(api.jobs[0].request.options).toEqual({ steps: 9, locality: 'guidance', spread: 0.25, strength: 0.6, variations: 1, seed: 7 });
  expect(fake.stack(psDoc)).toEqual(['make it red', 'photo']);
  expect($('apply').disabled).toBe(false);
  expect($('status').textContent).toMatch(/^Placed "make it red" above the source layer.*\(seed 7\)$/);
  expect($('preview').attrs.src).toBeUndefined(); // the result is in the document now: no preview left over
  expect($('preview').style.display).toBe('none');
  expect($('error').style.display).toBe('none');
  expect($('history-title').textContent).toBe('History of cat.psd');
  const rows = ($('history-list') as StubElement).children;
  expect(rows.map((r) => r.children[0].textContent)).toEqual(['● make it red (#1, seed 1234)', 'Original layer']);
  expect(rows[0].children[1].textContent).toBe('Continue from here');
});

it('shows errors from the controller and hides them again', async () => {
  const { $ } = await mounted();
  $('instruction').value = '  ';
  $('apply').click();
  await settle();
  expect($('error').textContent).toMatch(/Type an instruction/);
  expect($('error').style.display).toBe('');
});

it('saves settings and tests the connection', async () => {
  const { $, applied, local } = await mounted();
  $('settings-toggle').click();
  expect($('settings').style.display).toBe('');
  $('server-url').value = 'http://127.0.0.1:7860/';
  // the token field shows the secret only while it is being typed (UXP cannot read password fields on macOS)
  expect($('token').attrs.type).toBeUndefined();
  for (const f of $('token').listeners.focus ?? []) f({});
  expect($('token').attrs.type).toBe('text');
  $('token').value = 'abc';
  for (const f of $('token').listeners.blur ?? []) f({});
  expect($('token').attrs.type).toBe('password');
  $('settings-save').click();
  await settle();
  await settle();
  expect(applied[1]).toEqual({ serverUrl: 'http://127.0.0.1:7860/', token: 'abc' });
  expect([...local.values()]).toEqual(['http://127.0.0.1:7860', 'abc']);
  expect($('status').textContent).toBe('Connected to the layerloop server.');
});

it('refuses a server this build cannot reach, naming the ones it can and how to get a build for it', async () => {
  const { $, applied } = await mounted();
  expect($('allowed-servers').textContent).toBe('http://localhost:7860, http://127.0.0.1:7860');
  $('server-url').value = 'https://gpu.example.com';
  $('settings-save').click();
  await settle();
  expect(applied).toHaveLength(1);
  expect($('error').textContent).toBe(
    'This build of the plugin can only reach http://localhost:7860, http://127.0.0.1:7860 (Photoshop allows no other address). Ask for a build for https://gpu.example.com (npm run package -- --server https://gpu.example.com) and install that.',
  );
});

it('index.html uses only what UXP supports: labels wrap their controls, no box-sizing, the token is a password field', () => {
  const html = readFileSync(join(__dirname, '../../../plugin-uxp/index.html'), 'utf8');
  const body = html.slice(html.indexOf('<body>'));
  expect(body).not.toMatch(/<label[^>]*\sfor=/);
  expect(html.replace(/<!--[\s\S]*?-->/g, '')).not.toMatch(/box-sizing/);
  expect(body).toMatch(/<input id="token" type="password"/);
  for (const id of ['instruction', 'locality', 'spread', 'strength', 'variations', 'seed', 'steps', 'server-url', 'token']) {
    const before = body.slice(0, body.search(new RegExp(`<(textarea|select|input) id="${id}"`)));
    expect(before.lastIndexOf('<label>')).toBeGreaterThan(before.lastIndexOf('</label>')); // inside an open <label>
  }
});
