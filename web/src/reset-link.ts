// The password-reset link of the mail: `/#reset=TOKEN`. The token rides in the
// fragment, which browsers never send to a server (nor in `Referer`), and the app takes
// it out of the address bar as soon as it has read it. Pure.

/** The token of a `#reset=TOKEN` fragment (43 URL-safe characters), or null. */
export function resetToken(hash: string): string | null {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  const token = params.get('reset');
  return token && /^[A-Za-z0-9_-]{43}$/.test(token) ? token : null;
}

/** The fragment without the reset token (other parts kept), `''` when nothing is left. */
export function withoutResetToken(hash: string): string {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  params.delete('reset');
  const rest = params.toString();
  return rest ? `#${rest}` : '';
}
