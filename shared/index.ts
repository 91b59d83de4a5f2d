/** Everything shared by the server and the plugins (zod only, no Node built-ins). */
export * from './protocol';
