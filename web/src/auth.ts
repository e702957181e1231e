// The account panel: sign in, create an account, sign out, change the password, ask
// for a reset link and set a new password with it (`/#reset=TOKEN`), delete the account.
// Emits `user` events (detail: the user or null) when the signed-in user changes.
import { ApiError, api, type User } from './api';
import { append, h, replace } from './dom';
import { FormErrors, field } from './form';
import { resetToken, withoutResetToken } from './reset-link';

const HINT = 'planscape.signedIn';

export class AuthPanel extends EventTarget {
  user: User | null = null;
  /** The token of the reset link this page was opened with, until it is used or dropped. */
  private resetToken: string | null;
  /** A line shown above the signed-out forms (after a reset or a deletion). */
  private notice = '';
  /** The email to put in the sign-in form. */
  private knownEmail = '';

  constructor(private body: HTMLElement, private whoami: HTMLElement) {
    super();
    this.resetToken = this.takeResetToken();
    // A link pasted into a tab that already shows the app changes only the fragment.
    window.addEventListener('hashchange', () => {
      const token = this.takeResetToken();
      if (token) {
        this.resetToken = token;
        this.render();
      }
    });
  }

  /** The reset link's token, taken out of the address bar (and so out of history,
   *  bookmarks and shared links) at once. */
  private takeResetToken(): string | null {
    const token = resetToken(location.hash);
    if (token) {
      history.replaceState(history.state, '', `${location.pathname}${location.search}${withoutResetToken(location.hash)}`);
    }
    return token;
  }

  /** Finds out who is signed in (asks the server only when this browser signed in before). */
  async start(): Promise<void> {
    if (localStorage.getItem(HINT)) {
      try {
        this.user = await api.me();
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 401)) throw e;
        localStorage.removeItem(HINT);
      }
    }
    this.render();
    this.emit();
  }

  private setUser(user: User | null) {
    this.user = user;
    if (user) localStorage.setItem(HINT, '1');
    else localStorage.removeItem(HINT);
    this.render();
    this.emit();
  }

  private emit() {
    this.dispatchEvent(new CustomEvent('user', { detail: this.user }));
  }

  private render() {
    this.whoami.textContent = this.user ? this.user.name : '';
    if (this.resetToken) replace(this.body, this.newPasswordForm(this.resetToken));
    else if (this.user) replace(this.body, ...this.signedIn(this.user));
    else replace(this.body, ...this.signedOut());
  }

  private signedOut(): HTMLElement[] {
    const signIn = this.signInForm();
    const signUp = this.signUpForm();
    const forgot = this.forgotForm();
    signUp.hidden = true;
    forgot.hidden = true;
    const forms = [signIn, signUp, forgot];
    const tab = (label: string, show: HTMLElement) =>
      h('button', {
        type: 'button', class: 'link',
        onclick: () => {
          for (const f of forms) f.hidden = f !== show;
          show.querySelector('input')?.focus();
        },
      }, label);
    append(signIn, h('p', {}, tab('Forgot password?', forgot)), h('p', {}, 'New here? ', tab('Create an account', signUp)));
    append(signUp, h('p', {}, 'Have an account? ', tab('Sign in', signIn)));
    append(forgot, h('p', {}, 'Remembered it? ', tab('Sign in', signIn)));
    const notice = h('p', { class: 'ok', role: 'status' }, this.notice);
    this.notice = '';
    return [notice, ...forms];
  }

  /** Asks for a reset link: the answer is the same whether or not the account exists. */
  private forgotForm(): HTMLFormElement {
    const email = field('Email', 'email', 'email', 'username');
    const errors = new FormErrors([email]);
    const done = h('p', { class: 'ok', role: 'status' });
    const form = h('form', { 'aria-label': 'Reset password', novalidate: true },
      h('h2', {}, 'Reset password'),
      h('p', { class: 'hint' }, 'We mail you a link to choose a new password.'),
      email.wrap, errors.formError, done, h('button', { type: 'submit' }, 'Send reset link'));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      errors.clear();
      done.textContent = '';
      try {
        const answer = await api.requestReset(email.input.value.trim());
        done.textContent = answer.message;
      } catch (e) {
        errors.show(e);
      }
    });
    return form;
  }

  /** Sets a new password with the reset link's token; every session then ends. */
  private newPasswordForm(token: string): HTMLFormElement {
    const next = field('New password (at least 10 characters)', 'new_password', 'password', 'new-password');
    const errors = new FormErrors([next]);
    const form = h('form', { 'aria-label': 'Choose a new password', novalidate: true },
      h('h2', {}, 'Choose a new password'), next.wrap, errors.formError,
      h('button', { type: 'submit' }, 'Set password'),
      h('p', {}, h('button', {
        type: 'button', class: 'link',
        onclick: () => { this.resetToken = null; this.render(); },
      }, 'Cancel')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      errors.clear();
      try {
        const done = await api.resetPassword(token, next.input.value);
        this.resetToken = null;
        this.knownEmail = done.email;
        this.notice = 'Your password is changed and every session has ended. Sign in with the new password.';
        this.setUser(null);
      } catch (e) {
        errors.show(e);
      }
    });
    return form;
  }

  private signInForm(): HTMLFormElement {
    const email = field('Email', 'email', 'email', 'username');
    email.input.value = this.knownEmail;
    const password = field('Password', 'password', 'password', 'current-password');
    const errors = new FormErrors([email, password]);
    const form = h('form', { 'aria-label': 'Sign in', novalidate: true },
      h('h2', {}, 'Sign in'), email.wrap, password.wrap, errors.formError,
      h('button', { type: 'submit' }, 'Sign in'));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      errors.clear();
      try {
        const s = await api.login(email.input.value.trim(), password.input.value);
        this.setUser(s.user);
      } catch (e) {
        errors.show(e);
      }
    });
    return form;
  }

  private signUpForm(): HTMLFormElement {
    const name = field('Name', 'name', 'text', 'name');
    const email = field('Email', 'email', 'email', 'username');
    const password = field('Password (at least 10 characters)', 'password', 'password', 'new-password');
    const errors = new FormErrors([name, email, password]);
    const form = h('form', { 'aria-label': 'Create an account', novalidate: true },
      h('h2', {}, 'Create an account'), name.wrap, email.wrap, password.wrap, errors.formError,
      h('button', { type: 'submit' }, 'Create account'));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      errors.clear();
      try {
        const s = await api.signup(email.input.value.trim(), password.input.value, name.input.value.trim());
        this.setUser(s.user);
      } catch (e) {
        errors.show(e);
      }
    });
    return form;
  }

  private signedIn(user: User): HTMLElement[] {
    const current = field('Current password', 'current_password', 'password', 'current-password');
    const next = field('New password', 'new_password', 'password', 'new-password');
    const errors = new FormErrors([current, next]);
    const done = h('p', { class: 'ok', role: 'status' });
    const change = h('form', { 'aria-label': 'Change password', novalidate: true },
      current.wrap, next.wrap, errors.formError, done, h('button', { type: 'submit' }, 'Change password'));
    change.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      errors.clear();
      done.textContent = '';
      try {
        await api.changePassword(current.input.value, next.input.value);
        change.reset();
        done.textContent = 'Password changed. Your other sessions have ended.';
      } catch (e) {
        errors.show(e);
      }
    });
    const signOutError = h('p', { class: 'form-error', role: 'alert' });
    return [
      h('p', {}, 'Signed in as ', h('strong', {}, user.name), ` (${user.email})`),
      h('button', {
        type: 'button',
        onclick: async () => {
          try {
            await api.logout();
          } catch (e) {
            // An expired session is signed out all the same.
            if (!(e instanceof ApiError && e.status === 401)) {
              signOutError.textContent = e instanceof ApiError ? e.describe() : String(e);
              return;
            }
          }
          this.setUser(null);
        },
      }, 'Sign out'),
      signOutError,
      h('details', {}, h('summary', {}, 'Change password'), change),
      h('details', {}, h('summary', {}, 'Delete account'), this.deleteForm(user)),
    ];
  }

  /** Deletes the account, confirmed with the password. */
  private deleteForm(user: User): HTMLFormElement {
    const password = field('Password', 'password', 'password', 'current-password');
    const errors = new FormErrors([password]);
    const form = h('form', { 'aria-label': 'Delete account', novalidate: true },
      h('p', {}, 'Deletes your account and the plans only you own, with their scenarios. ',
        'A plan you own with another owner stays theirs; scenarios you made on other people\'s plans stay. ',
        'This cannot be undone.'),
      password.wrap, errors.formError,
      h('button', { type: 'submit', class: 'danger' }, 'Delete my account'));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      errors.clear();
      try {
        await api.deleteAccount(password.input.value);
        this.notice = `The account ${user.email} is deleted.`;
        this.setUser(null);
      } catch (e) {
        errors.show(e);
      }
    });
    return form;
  }
}
