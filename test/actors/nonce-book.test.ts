// Nonces: single use, bound to their connection, short-lived, and replays named as replays.
import test from "ava";
import { NonceBook } from "../../actors/nonce-book.ts";

test("a nonce is accepted once, on its own connection, before it expires", (t) => {
  const book = new NonceBook({ ttlMs: 1000 });
  const { nonce, expiresAt } = book.issue(1, 0);
  t.is(nonce.length, 32);
  t.is(expiresAt, 1000);
  t.is(book.consume(2, nonce, 10), "EE-ATT-NONCE-UNKNOWN", "another connection cannot use it");
  t.is(book.consume(1, nonce, 10), "ok");
  t.is(book.consume(1, nonce, 11), "EE-ATT-NONCE-REPLAYED");
});

test("an expired nonce is refused and spent", (t) => {
  const book = new NonceBook({ ttlMs: 1000 });
  const { nonce } = book.issue(1, 0);
  t.is(book.consume(1, nonce, 1001), "EE-ATT-NONCE-EXPIRED");
  t.is(book.consume(1, nonce, 1002), "EE-ATT-NONCE-REPLAYED");
});

test("a nonce from a closed connection counts as used", (t) => {
  const book = new NonceBook({ ttlMs: 1000 });
  const { nonce } = book.issue(1, 0);
  book.forget(1);
  t.is(book.consume(1, nonce, 1), "EE-ATT-NONCE-REPLAYED");
});

test("nonces are random and a re-issue replaces the pending one", (t) => {
  const book = new NonceBook({ ttlMs: 1000 });
  const a = book.issue(1, 0);
  const b = book.issue(1, 0);
  t.notDeepEqual([...a.nonce], [...b.nonce]);
  t.is(book.consume(1, a.nonce, 1), "EE-ATT-NONCE-UNKNOWN");
  t.is(book.consume(1, b.nonce, 1), "ok");
});

test("the replay memory is bounded", (t) => {
  const book = new NonceBook({ ttlMs: 1000, maxRemembered: 2 });
  const spent = [1, 2, 3].map((c) => {
    const { nonce } = book.issue(c, 0);
    book.consume(c, nonce, 1);
    return nonce;
  });
  t.is(book.consume(9, spent[0]!, 2), "EE-ATT-NONCE-UNKNOWN", "the oldest was evicted");
  t.is(book.consume(9, spent[2]!, 2), "EE-ATT-NONCE-REPLAYED");
});
