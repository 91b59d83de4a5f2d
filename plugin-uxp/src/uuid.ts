/** RFC 4122 version 4 UUIDs from 16 random bytes (the caller supplies them: crypto.getRandomValues in UXP). */
export function uuidV4(random16: Uint8Array): string {
  if (random16.length !== 16) throw new RangeError(`uuidV4 needs 16 random bytes, got ${random16.length}`);
  const b = new Uint8Array(random16);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
