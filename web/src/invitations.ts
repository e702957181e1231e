// The invitations waiting for the signed-in user's answer: each plan's name, who invited
// and the role offered, with Accept and Decline. A count badge on the Plans heading says
// how many wait. Accepting adds the plan to the user's list (the plans panel shows it);
// declining gives no access.
import { ApiError, api, type Plan, type ReceivedInvitation } from './api';
import { h, replace } from './dom';

export class InvitationsList {
  readonly element = h('section', { class: 'invitations', 'aria-label': 'Invitations' });
  private error = h('p', { class: 'form-error', role: 'alert' });
  private invitations: ReceivedInvitation[] = [];

  /** `badge`: where the count is shown (the Plans heading); `onAccepted`: the plan now shared. */
  constructor(private badge: HTMLElement | null, private onAccepted: (plan: Plan) => void) {}

  /** Reads the invitations again (none when signed out). */
  async load(signedIn: boolean): Promise<void> {
    this.error.textContent = '';
    try {
      this.invitations = signedIn ? await api.invitations() : [];
    } catch (e) {
      this.invitations = [];
      this.error.textContent = describe(e);
    }
    this.render();
  }

  private render() {
    const n = this.invitations.length;
    if (this.badge) {
      this.badge.textContent = n ? String(n) : '';
      this.badge.hidden = n === 0;
      this.badge.setAttribute('aria-label', `${n} invitation${n === 1 ? '' : 's'} waiting`);
    }
    if (!n) {
      replace(this.element, this.error);
      return;
    }
    replace(this.element, h('h3', {}, 'Invitations ', h('span', { class: 'badge' }, n)),
      h('ul', { class: 'invitation-list' }, ...this.invitations.map((i) => this.row(i))), this.error);
  }

  private row(i: ReceivedInvitation): HTMLLIElement {
    const answer = (verb: 'accept' | 'decline') => async () => {
      this.error.textContent = '';
      try {
        if (verb === 'accept') {
          const plan = await api.acceptInvitation(i.id);
          this.invitations = this.invitations.filter((x) => x.id !== i.id);
          this.render();
          this.onAccepted(plan);
        } else {
          await api.declineInvitation(i.id);
          this.invitations = this.invitations.filter((x) => x.id !== i.id);
          this.render();
        }
      } catch (e) {
        this.error.textContent = describe(e);
        await this.load(true);
      }
    };
    return h('li', { 'data-invitation': i.id },
      h('span', {}, h('strong', {}, i.plan_name), ` from ${i.inviter_name}, as `),
      h('span', { class: `role role-${i.role}` }, i.role),
      h('span', { class: 'answers' },
        h('button', { type: 'button', 'aria-label': `Accept ${i.plan_name}`, onclick: answer('accept') }, 'Accept'),
        h('button', { type: 'button', 'aria-label': `Decline ${i.plan_name}`, onclick: answer('decline') }, 'Decline')));
  }
}

function describe(e: unknown): string {
  return e instanceof ApiError ? e.describe() : String(e);
}
