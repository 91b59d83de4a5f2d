/**
 * The plugin's main thread (Figma's sandbox: no DOM, no browser APIs). Everything happens in
 * MainController over the FigmaHost port; this file only wires the real host.
 */
import { z } from 'zod';
import { MainController } from './controller';
import { RealFigmaHost } from './figma-host';

// The sandbox may refuse `new Function`; zod then validates without generated code.
z.config({ jitless: true });

new MainController(new RealFigmaHost(__html__)).start();
