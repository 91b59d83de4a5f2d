/**
 * npm run package (tools/plugins/package.mjs): the packages a designer installs, opened as the hosts open them,
 * and the development manifests checked against what the hosts accept (research/host_audit.md F1, F12, P6, P7).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import AdmZip from 'adm-zip';
import { ROOT } from '../../support/server';

const SERVER = 'https://layerloop.example.com';

interface UxpIcon {
  width: number;
  height: number;
  path: string;
  scale: number[];
}

/** A manifest icon's files: path, plus path@2x for scale 2. */
function iconFiles(icon: UxpIcon): string[] {
  return icon.scale.map((s) => (s === 1 ? icon.path : icon.path.replace(/\.png$/, `@${s}x.png`)));
}

function pngSize(bytes: Buffer): [number, number] {
  expect(bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
  return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
}

describe('npm run package', () => {
  let out: string;

  beforeAll(() => {
    out = fs.mkdtempSync(path.join(os.tmpdir(), 'layerloop-package-'));
    execFileSync(process.execPath, ['tools/plugins/package.mjs', '--server', `${SERVER}/`, '--out', out], { cwd: ROOT, stdio: 'pipe' });
  }, 60_000);

  afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

  it('layerloop-photoshop.ccx: a zip with the release manifest at its root and every file it names', () => {
    const file = path.join(out, 'layerloop-photoshop.ccx');
    const bytes = fs.readFileSync(file);
    expect(bytes.subarray(0, 4)).toEqual(Buffer.from([0x50, 0x4b, 0x03, 0x04])); // a zip's first local header
    const zip = new AdmZip(file);
    const names = zip.getEntries().filter((e) => !e.isDirectory).map((e) => e.entryName);
    expect(names).toContain('manifest.json'); // at the root, not in a folder
    const manifest = JSON.parse(zip.readAsText('manifest.json'));
    expect(manifest).toMatchObject({ manifestVersion: 5, main: 'index.html', version: JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version });
    expect(manifest.host).toEqual({ app: 'PS', minVersion: '24.4.0' }); // one object: arrays are for development only
    expect(manifest.requiredPermissions).toEqual({ network: { domains: ['http://localhost:7860', 'http://127.0.0.1:7860', SERVER] } });
    const icons: UxpIcon[] = [...manifest.icons, ...manifest.entrypoints.flatMap((e: { icons?: UxpIcon[] }) => e.icons ?? [])];
    expect(manifest.icons.length).toBeGreaterThan(0);
    expect(manifest.entrypoints.map((e: { type: string; id: string; icons?: unknown[] }) => [e.type, e.id, (e.icons ?? []).length > 0])).toEqual([['panel', 'main', true]]);
    for (const icon of icons) {
      for (const [k, name] of iconFiles(icon).entries()) {
        expect(names).toContain(name);
        expect(pngSize(zip.readFile(name)!)).toEqual([icon.width * icon.scale[k], icon.height * icon.scale[k]]);
      }
    }
    const html = zip.readAsText('index.html');
    const script = /<script src="([^"]+)"><\/script>/.exec(html)?.[1];
    expect(script).toBe('dist/index.js');
    const bundle = zip.readAsText('dist/index.js');
    expect(bundle).toContain(SERVER); // the Settings allow exactly the manifest's domains
    expect(names.some((n) => n.endsWith('.map'))).toBe(false);
  });

  it('layerloop-figma.zip: manifest, code.js and ui.html in one folder; the team server is the allowed domain', () => {
    const zip = new AdmZip(path.join(out, 'layerloop-figma.zip'));
    const names = zip.getEntries().filter((e) => !e.isDirectory).map((e) => e.entryName).sort();
    expect(names).toEqual(['layerloop-figma/code.js', 'layerloop-figma/manifest.json', 'layerloop-figma/ui.html']);
    const manifest = JSON.parse(zip.readAsText('layerloop-figma/manifest.json'));
    expect(manifest).toMatchObject({ api: '1.0.0', editorType: ['figma'], documentAccess: 'dynamic-page', main: 'code.js', ui: 'ui.html' });
    expect(manifest.networkAccess.allowedDomains).toEqual([SERVER]);
    expect(manifest.networkAccess.devAllowedDomains).toEqual(['http://localhost:7860']);
    expect(manifest.networkAccess.reasoning).toContain(SERVER);
    const ui = zip.readAsText('layerloop-figma/ui.html');
    expect(ui).not.toMatch(/<script[^>]*\ssrc=/); // Figma loads the UI from a string
  });
});

describe('the development manifests', () => {
  const figma = JSON.parse(fs.readFileSync(path.join(ROOT, 'plugin-figma/manifest.json'), 'utf8'));
  const uxp = JSON.parse(fs.readFileSync(path.join(ROOT, 'plugin-uxp/manifest.json'), 'utf8'));

  it('Figma: no IP literal among the domains (Figma rejects those), a reason for reaching any server', () => {
    const domains: string[] = [...figma.networkAccess.allowedDomains, ...(figma.networkAccess.devAllowedDomains ?? [])];
    expect(domains.filter((d) => /\/\/\d+\.\d+\.\d+\.\d+/.test(d))).toEqual([]);
    expect(figma.networkAccess.reasoning.length).toBeGreaterThan(40);
    expect(figma.documentAccess).toBe('dynamic-page');
  });

  it('Photoshop: one host object, icons, only the network permission it uses', () => {
    expect(Array.isArray(uxp.host)).toBe(false);
    expect(Object.keys(uxp.requiredPermissions)).toEqual(['network']);
    for (const icon of uxp.icons as UxpIcon[]) for (const name of iconFiles(icon)) expect(fs.existsSync(path.join(ROOT, 'plugin-uxp', name))).toBe(true);
  });
});
