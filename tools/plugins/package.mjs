// npm run package [-- --server https://layerloop.example.com ...] [--out DIR]
//
// Builds the packages a designer installs, into DIR (default dist/):
//   layerloop-photoshop.ccx  a UXP package (a zip with manifest.json at its root): double-click to install with
//                            Creative Cloud, or load its folder (DIR/package/photoshop) in the UXP Developer Tool
//   layerloop-figma.zip      layerloop-figma/{manifest.json, code.js, ui.html}: Plugins > Development > Import
//                            plugin from manifest
// Photoshop grants network access only to the domains its manifest lists, and an installed plugin's manifest
// cannot be edited: each --server (scheme, host and port) is added to both manifests. Without --server the
// packages reach http://localhost:7860 (Photoshop) and any server (Figma, which asks for https off this computer).
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import AdmZip from 'adm-zip';
import { buildFigmaPlugin, buildUxpPlugin, uxpDevelopmentDomains } from './builds.mjs';

const { values } = parseArgs({ options: { server: { type: 'string', multiple: true, default: [] }, out: { type: 'string', default: 'dist' } } });
const servers = values.server.map((url) => {
  const m = /^(https?:\/\/[^/?#\s]+)\/?$/i.exec(url.trim());
  if (!m) throw new Error(`--server must be an origin such as https://layerloop.example.com or http://gpu-box:7860, got "${url}"`);
  return m[1].toLowerCase();
});
const version = JSON.parse(readFileSync('package.json', 'utf8')).version;
const staging = join(values.out, 'package');
rmSync(staging, { recursive: true, force: true });

function zip(folder, file, prefix = '') {
  const archive = new AdmZip();
  archive.addLocalFolder(folder, prefix);
  archive.writeZip(file);
}

// ---- Photoshop: the release manifest (one host object, icons, the servers' domains) and the files it names
{
  const dir = join(staging, 'photoshop');
  const manifest = JSON.parse(readFileSync('plugin-uxp/manifest.json', 'utf8'));
  const domains = [...new Set([...uxpDevelopmentDomains(), ...servers])];
  manifest.version = version;
  manifest.requiredPermissions = { ...manifest.requiredPermissions, network: { domains } };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  cpSync('plugin-uxp/index.html', join(dir, 'index.html'));
  cpSync('plugin-uxp/icons', join(dir, 'icons'), { recursive: true });
  await buildUxpPlugin({ outfile: join(dir, 'dist', 'index.js'), domains, sourcemap: false });
  zip(dir, join(values.out, 'layerloop-photoshop.ccx'));
}

// ---- Figma: manifest + code.js + ui.html in one folder
{
  const dir = join(staging, 'figma');
  const manifest = JSON.parse(readFileSync('plugin-figma/manifest.json', 'utf8'));
  manifest.main = 'code.js';
  manifest.ui = 'ui.html';
  if (servers.length > 0) {
    manifest.networkAccess = {
      allowedDomains: servers,
      devAllowedDomains: ['http://localhost:7860'],
      reasoning: `layerloop sends the selected layer (and the mask you drew) to your team's image-editing server (${servers.join(', ')}) and places the edited image back as a new layer. Nothing is sent anywhere else.`,
    };
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  await buildFigmaPlugin({ codeFile: join(dir, 'code.js'), uiFile: join(dir, 'ui.html') });
  zip(dir, join(values.out, 'layerloop-figma.zip'), 'layerloop-figma');
}

console.log(`packaged layerloop ${version} into ${values.out}/: layerloop-photoshop.ccx, layerloop-figma.zip${servers.length ? ` (servers: ${servers.join(', ')})` : ''}`);
