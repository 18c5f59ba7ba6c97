// DueQueue: due keys come out earliest first and once; a rescheduled key comes out at its new time only; a key
// taken and not rescheduled is gone.
import test from "ava";
import { DueQueue } from "../../lib/due-queue.ts";

test("due keys are taken earliest first, each once, and only when due", (t) => {
  const q = new DueQueue<string>();
  for (const [key, due] of [
    ["c", 30],
    ["a", 10],
    ["d", 40],
    ["b", 20],
  ] as const)
    q.schedule(key, due);
  t.deepEqual([...q.takeDue(5)], []);
  t.deepEqual([...q.takeDue(25)], ["a", "b"]);
  t.false(q.has("a"));
  t.true(q.has("c"));
  t.deepEqual([...q.takeDue(100)], ["c", "d"]);
  t.deepEqual([...q.takeDue(1000)], []);
});

test("a rescheduled key comes out at its new time only, later or earlier", (t) => {
  const q = new DueQueue<string>();
  q.schedule("late", 10);
  q.schedule("late", 50);
  q.schedule("early", 40);
  q.schedule("early", 5);
  t.deepEqual([...q.takeDue(10)], ["early"]);
  t.deepEqual([...q.takeDue(49)], []);
  t.deepEqual([...q.takeDue(50)], ["late"]);
});

test("a key rescheduled while it is being taken comes back at its new time", (t) => {
  const q = new DueQueue<number>();
  for (let i = 0; i < 100; i++) q.schedule(i, i);
  const first: number[] = [];
  for (const k of q.takeDue(49)) {
    first.push(k);
    if (k % 2 === 0) q.schedule(k, 1000 + k);
  }
  t.deepEqual(
    first,
    Array.from({ length: 50 }, (_, i) => i),
  );
  const rest = [...q.takeDue(2000)];
  t.deepEqual(rest, [
    ...Array.from({ length: 50 }, (_, i) => 50 + i),
    ...Array.from({ length: 25 }, (_, i) => 1000 + 2 * i).map((d) => d - 1000),
  ]);
});
