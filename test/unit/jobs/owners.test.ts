import { JobOwners, queueShare } from '../../../server/jobs/owners';

describe('JobOwners', () => {
  test('counts each user’s jobs queued and running, and forgets them when they end', () => {
    const owners = new JobOwners();
    owners.assign('j1', { userId: 'u1', workspaceId: 'w1' });
    owners.assign('j2', { userId: 'u1', workspaceId: 'w1' });
    owners.assign('j2', { userId: 'u1', workspaceId: 'w1' }); // idempotent
    owners.assign('j3', { userId: 'u2', workspaceId: 'w2' });
    expect([owners.active('u1'), owners.queued('u1'), owners.active('u2')]).toEqual([2, 2, 1]);
    owners.start('j1');
    owners.start('j1');
    expect([owners.active('u1'), owners.queued('u1')]).toEqual([2, 1]);
    expect(owners.get('j1')).toEqual({ userId: 'u1', workspaceId: 'w1' });
    owners.release('j1'); // ended after it started
    owners.release('j2'); // withdrawn before it started
    owners.release('j2');
    expect([owners.active('u1'), owners.queued('u1'), owners.get('j1')]).toEqual([0, 0, null]);
    expect([...owners.activeUsers()]).toEqual(['u2']);
  });

  test('a user whose last job just ended counts as busy for lingerMs (its next edit is on its way)', () => {
    const clock = { t: 1000 };
    const owners = new JobOwners({ lingerMs: 500, now: () => clock.t });
    owners.assign('a1', { userId: 'light', workspaceId: 'w1' });
    owners.assign('h1', { userId: 'heavy', workspaceId: 'w2' });
    owners.release('a1');
    expect(owners.activeUsers()).toEqual(['heavy', 'light']);
    expect(queueShare(64, [...owners.activeUsers(), 'heavy'])).toBe(1); // heavy may not fill the queue meanwhile
    clock.t += 499;
    expect(owners.activeUsers()).toEqual(['heavy', 'light']);
    owners.assign('a2', { userId: 'light', workspaceId: 'w1' }); // it came back: busy as usual
    expect(owners.activeUsers()).toEqual(['heavy', 'light']);
    owners.release('a2');
    clock.t += 501;
    expect(owners.activeUsers()).toEqual(['heavy']);
    expect(queueShare(64, [...owners.activeUsers(), 'heavy'])).toBe(64);
  });

  test('queueShare: alone, a user may fill the queue; with others busy, one waiting job each', () => {
    expect(queueShare(64, ['local', 'local'])).toBe(64); // alone: the whole queue, as without users
    expect(queueShare(8, [])).toBe(8);
    expect(queueShare(8, ['a', 'b', 'c', 'd', 'a'])).toBe(1);
    expect(queueShare(64, ['a', 'b'])).toBe(1);
  });
});
