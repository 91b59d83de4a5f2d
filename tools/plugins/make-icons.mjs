// Renders the Photoshop plugin's icons (plugin-uxp/icons/, committed) from one SVG: two overlapping layers with
// a loop, in the plugin list's 48 px and the panel's 23 px, each at 1x and 2x.
//   node tools/plugins/make-icons.mjs
import { mkdirSync } from 'node:fs';
import sharp from 'sharp';

const svg = (fg) => `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 48 48">
  <rect x="6" y="14" width="26" height="26" rx="4" fill="none" stroke="${fg}" stroke-width="3"/>
  <rect x="16" y="6" width="26" height="26" rx="4" fill="#2d9cdb" opacity="0.85"/>
  <path d="M24 19 a6 6 0 1 1 6 6" fill="none" stroke="#ffffff" stroke-width="3" stroke-linecap="round"/>
</svg>`;

mkdirSync('plugin-uxp/icons', { recursive: true });
const sizes = [
  ['plugin', 48],
  ['panel', 23],
];
for (const [name, size] of sizes) {
  for (const [suffix, scale] of [['', 1], ['@2x', 2]]) {
    await sharp(Buffer.from(svg('#9aa4ad')), { density: 72 * scale * (size / 48) * 4 })
      .resize(size * scale, size * scale)
      .png()
      .toFile(`plugin-uxp/icons/${name}${suffix}.png`);
  }
}
