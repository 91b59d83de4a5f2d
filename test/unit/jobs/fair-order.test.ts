/** The dispatch order both queues use (server/jobs/fair-order.ts); the queue contract checks the queues keep it. */
import { fairOrder } from '../../../server/jobs/fair-order';

const job = (userId: string, documentId: string, order: number) => ({ userId, documentId, order, name: `${userId}${documentId}${order}` });
const names = (jobs: { name: string }[]) => jobs.map((j) => j.name);
const never = () => 0;

describe('fairOrder', () => {
  it('users take turns; within a user, its documents take turns; FIFO within a document', () => {
    // A has three documents (x: 3 jobs, y: 1, z: 1), B one document with two jobs, arriving after A's
    const jobs = [job('A', 'x', 1), job('A', 'x', 2), job('A', 'x', 3), job('A', 'y', 4), job('A', 'z', 5), job('B', 'w', 6), job('B', 'w', 7)];
    expect(names(fairOrder(jobs, never, never))).toEqual(['Ax1', 'Bw6', 'Ay4', 'Bw7', 'Az5', 'Ax2', 'Ax3']);
  });

  it('the user and the document served least recently go first; one never served (or idle since) before all', () => {
    const jobs = [job('A', 'x', 1), job('B', 'y', 2), job('C', 'z', 3)];
    const lastUser = (u: string) => ({ A: 9, B: 4 })[u] ?? 0;
    expect(names(fairOrder(jobs, lastUser, never))).toEqual(['Cz3', 'By2', 'Ax1']);
    const two = [job('A', 'x', 1), job('A', 'y', 2)];
    expect(names(fairOrder(two, never, (d) => (d === 'x' ? 5 : 0)))).toEqual(['Ay2', 'Ax1']);
  });

  it('arrival order decides, not the order given', () => {
    expect(names(fairOrder([job('A', 'x', 3), job('A', 'x', 1), job('A', 'x', 2)], never, never))).toEqual(['Ax1', 'Ax2', 'Ax3']);
    expect(fairOrder([], never, never)).toEqual([]);
  });
});
