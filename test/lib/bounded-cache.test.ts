import test from "ava";
import { BoundedCache } from "../../lib/bounded-cache.ts";

test("evicts the least recently used entry once full", (t) => {
  const cache = new BoundedCache<string, number>(2);
  cache.set("a", 1);
  cache.set("b", 2);
  t.is(cache.get("a"), 1); // "b" is now the least recently used
  cache.set("c", 3);
  t.is(cache.size, 2);
  t.is(cache.get("b"), undefined);
  t.is(cache.get("a"), 1);
  t.is(cache.get("c"), 3);
});

test("re-setting a key refreshes it without growing", (t) => {
  const cache = new BoundedCache<string, number>(2);
  cache.set("a", 1);
  cache.set("b", 2);
  cache.set("a", 10);
  cache.set("c", 3);
  t.is(cache.get("a"), 10);
  t.is(cache.get("b"), undefined);
});

test("refuses a size below one", (t) => {
  t.throws(() => new BoundedCache(0), { instanceOf: RangeError });
  t.throws(() => new BoundedCache(1.5), { instanceOf: RangeError });
});
