// The sharing panel of a plan: its members with their roles. Owners invite by email with
// a role (the invitee accepts or declines; until then the invitation is listed as
// pending, and the owner may revoke it), change roles and remove members; other members
// see the list and may leave. The server enforces the same rules; this only shows what
// the role allows.
import { ApiError, api, type Member, type Plan, type Role, type User } from './api';
import { h, replace, uid } from './dom';
import { FormErrors, field } from './form';

const ROLES: Role[] = ['viewer', 'collaborator', 'owner'];

export class SharingPanel {
  readonly element = h('section', { class: 'sharing', 'aria-label': 'Sharing' });
  private error = h('p', { class: 'form-error', role: 'alert' });
  private notice = h('p', { class: 'hint', role: 'status' });

  constructor(private plan: Plan, private user: User, private onLeft: () => void) {}

  async load(): Promise<void> {
    try {
      this.render(await api.members(this.plan.id));
    } catch (e) {
      replace(this.element, h('h3', {}, 'Sharing'), h('p', { class: 'form-error' }, describe(e)));
    }
  }

  private render(members: Member[]) {
    const owner = this.plan.role === 'owner';
    const list = h('ul', { class: 'members' }, ...members.map((m) => this.row(m, owner)));
    replace(this.element, h('h3', {}, 'Sharing'), list, this.error, this.notice,
      owner ? this.inviteForm() : this.leaveButton());
  }

  private row(m: Member, owner: boolean): HTMLLIElement {
    if (m.status === 'pending') return this.pendingRow(m);
    const name = m.name ?? m.email;
    const who = h('span', {}, h('strong', {}, name), ` ${m.email}`, m.user_id === this.user.id ? ' (you)' : '');
    // The creator stays an owner; owners manage everyone else.
    if (!owner || m.user_id === this.plan.owner_id) {
      return h('li', { 'data-user': m.user_id }, who, h('span', { class: `role role-${m.role}` }, m.role));
    }
    const id = uid('member-role');
    const select = h('select', {
      id, 'aria-label': `Role of ${name}`,
      onchange: async () => {
        this.error.textContent = '';
        try {
          await api.changeRole(this.plan.id, m.user_id!, select.value as Role);
        } catch (e) {
          this.error.textContent = describe(e);
        }
        await this.load();
      },
    }, ...ROLES.map((r) => h('option', { value: r }, r)));
    select.value = m.role;
    const remove = h('button', {
      type: 'button', class: 'danger', 'aria-label': `Remove ${name}`,
      onclick: async () => {
        this.error.textContent = '';
        try {
          await api.removeMember(this.plan.id, m.user_id!);
        } catch (e) {
          this.error.textContent = describe(e);
        }
        await this.load();
      },
    }, 'Remove');
    return h('li', { 'data-user': m.user_id }, who, select, remove);
  }

  /** An invitation not yet answered (owners only see these): the email, the role
   *  offered, and a button to revoke it. */
  private pendingRow(m: Member): HTMLLIElement {
    const revoke = h('button', {
      type: 'button', class: 'danger', 'aria-label': `Revoke the invitation of ${m.email}`,
      onclick: async () => {
        this.error.textContent = '';
        this.notice.textContent = '';
        try {
          await api.revokeInvitation(this.plan.id, m.invitation_id!);
        } catch (e) {
          this.error.textContent = describe(e);
        }
        await this.load();
      },
    }, 'Revoke');
    return h('li', { class: 'pending', 'data-invitation': m.invitation_id },
      h('span', {}, m.email), h('span', { class: `role role-${m.role}` }, m.role),
      h('span', { class: 'status-pending' }, 'invited, waiting for an answer'), revoke);
  }

  private inviteForm(): HTMLFormElement {
    const email = field('Invite by email', 'email', 'email', 'off');
    const roleId = uid('invite-role');
    const role = h('select', { id: roleId, name: 'role' }, ...ROLES.map((r) => h('option', { value: r }, r)));
    const errors = new FormErrors([email]);
    const form = h('form', { 'aria-label': 'Invite a member', novalidate: true }, email.wrap,
      h('div', { class: 'field' }, h('label', { for: roleId }, 'Role'), role), errors.formError,
      h('button', { type: 'submit' }, 'Invite'));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      errors.clear();
      this.notice.textContent = '';
      try {
        const sent = await api.invite(this.plan.id, email.input.value.trim(), role.value as Role);
        await this.load();
        this.notice.textContent = `Invitation sent to ${sent.email}: they see it when signed in with that email.`;
      } catch (e) {
        errors.show(e);
      }
    });
    return form;
  }

  private leaveButton(): HTMLElement {
    return h('button', {
      type: 'button', class: 'danger',
      onclick: async () => {
        try {
          await api.removeMember(this.plan.id, this.user.id);
          this.onLeft();
        } catch (e) {
          this.error.textContent = describe(e);
        }
      },
    }, 'Leave this plan');
  }
}

function describe(e: unknown): string {
  return e instanceof ApiError ? e.describe() : String(e);
}
