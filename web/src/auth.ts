// The account panel: sign in, create an account, sign out, change the password.
// Emits `user` events (detail: the user or null) when the signed-in user changes.
import { ApiError, api, type User } from './api';
import { append, h, replace } from './dom';
import { FormErrors, field } from './form';

const HINT = 'planscape.signedIn';

export class AuthPanel extends EventTarget {
  user: User | null = null;

  constructor(private body: HTMLElement, private whoami: HTMLElement) {
    super();
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
    if (this.user) replace(this.body, ...this.signedIn(this.user));
    else replace(this.body, ...this.signedOut());
  }

  private signedOut(): HTMLElement[] {
    const signIn = this.signInForm();
    const signUp = this.signUpForm();
    signUp.hidden = true;
    const tab = (label: string, show: HTMLElement, hide: HTMLElement) =>
      h('button', {
        type: 'button', class: 'link',
        onclick: () => { show.hidden = false; hide.hidden = true; show.querySelector('input')?.focus(); },
      }, label);
    append(signIn, h('p', {}, 'New here? ', tab('Create an account', signUp, signIn)));
    append(signUp, h('p', {}, 'Have an account? ', tab('Sign in', signIn, signUp)));
    return [signIn, signUp];
  }

  private signInForm(): HTMLFormElement {
    const email = field('Email', 'email', 'email', 'username');
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
    ];
  }
}
