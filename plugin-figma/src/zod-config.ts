/**
 * zod without generated code in Figma's main thread (a WebAssembly JS VM): every schema then validates by
 * interpretation, the same everywhere. Imported first by code.ts, because zod reads this setting when a schema
 * is constructed, and the other imports construct schemas as they load.
 */
import { z } from 'zod';

z.config({ jitless: true });
