// The reset link: the token read from the fragment, and the fragment without it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resetToken, withoutResetToken } from '../src/reset-link';

const TOKEN = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_01234';

test('the token comes from #reset=', () => {
  assert.equal(TOKEN.length, 43);
  assert.equal(resetToken(`#reset=${TOKEN}`), TOKEN);
  assert.equal(resetToken(`#x=1&reset=${TOKEN}`), TOKEN);
});

test('anything else is no token', () => {
  for (const hash of ['', '#', '#reset=', '#reset=short', `#reset=${TOKEN}x`, `#reset=${TOKEN.slice(1)}!`, `#other=${TOKEN}`]) {
    assert.equal(resetToken(hash), null, hash);
  }
});

test('the token is taken out of the fragment, the rest kept', () => {
  assert.equal(withoutResetToken(`#reset=${TOKEN}`), '');
  assert.equal(withoutResetToken(`#x=1&reset=${TOKEN}`), '#x=1');
  assert.equal(withoutResetToken(''), '');
});
