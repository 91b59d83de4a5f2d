/** The client of the layerloop server shared by both plugins and the playground (zod only, no Node built-ins). */
export * from './client';
export * from './edit';
export * from './errors';
export * from './follow';
export * from './history-marker';
export * from './session';
