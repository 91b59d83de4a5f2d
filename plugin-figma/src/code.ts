/**
 * The plugin's main thread (Figma's sandbox: no DOM, no browser APIs). Everything happens in
 * MainController over the FigmaHost port; this file only wires the real host.
 */
// first: zod reads its config when a schema is built, and the imports below build schemas
import './zod-config';
import { MainController } from './controller';
import { RealFigmaHost } from './figma-host';

new MainController(new RealFigmaHost(__html__, figma)).start();
