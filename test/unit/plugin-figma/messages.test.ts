import { settingsSchema } from '../../../plugin-figma/src/messages';

/** the error the Settings show for a server URL, or 'ok' */
const check = (serverUrl: string) => {
  const parsed = settingsSchema.safeParse({ serverUrl, token: '' });
  return parsed.success ? `ok ${parsed.data.serverUrl}` : parsed.error.issues[0].message;
};

describe('the server URL in Settings', () => {
  it('takes https anywhere and plain http on this computer (Figma’s https frame may reach those)', () => {
    expect(check('https://layerloop.example.com/')).toBe('ok https://layerloop.example.com');
    expect(check('http://localhost:7860')).toBe('ok http://localhost:7860');
    expect(check(' http://127.0.0.1:7860/ ')).toBe('ok http://127.0.0.1:7860');
    expect(check('http://[::1]:7860')).toBe('ok http://[::1]:7860');
  });

  it('refuses plain http to another computer, which the browser blocks as mixed content, saying what to use', () => {
    expect(check('http://192.168.1.20:7860')).toBe(
      'Figma only reaches a server on another computer over https (it blocks http://192.168.1.20:7860 as mixed content): use https:// for a team server, or http://localhost for one on this computer.',
    );
    expect(check('http://gpu-box.local:7860')).toMatch(/^Figma only reaches a server on another computer over https/);
    expect(check('ftp://x')).toBe('The server URL must start with http:// or https:// and name a host, e.g. http://localhost:7860');
  });
});
