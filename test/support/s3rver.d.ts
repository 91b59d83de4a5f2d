/** The part of s3rver (an S3 server for tests, no types of its own) that test/support/services.ts uses. */
declare module 's3rver' {
  import type { AddressInfo } from 'node:net';

  interface S3rverOptions {
    address?: string;
    /** 0: any free port (run() resolves with the one taken) */
    port?: number;
    silent?: boolean;
    /** where buckets and objects are kept */
    directory: string;
  }

  class S3rver {
    constructor(options: S3rverOptions);
    run(): Promise<AddressInfo>;
    close(): Promise<void>;
  }
  export = S3rver;
}
