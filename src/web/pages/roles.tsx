/**
 * Roles (for admins): what each role grants (device selectors, logins, forward targets and
 * relay actions) and who has it; add, edit and remove roles. The relay checks every part and
 * the form shows its message when it refuses one.
 */
import '../components/forms.css';
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { ACTIONS } from '../../protocol/access-rules.ts';
import { api, get } from '../api.ts';
import type { RoleView } from '../api-types.ts';
import { Empty, ErrorBanner } from '../components/index.ts';
import { lineItems, listItems } from '../components/list-input.ts';
import { seg } from '../router.tsx';
import { can, useMe } from '../session.ts';
import { useData } from '../use-data.ts';

/** The roles page (`/roles`). */
export default function RolesPage(): JSX.Element {
  const me = useMe();
  const roles = useData((signal) => get<{ roles: RoleView[] }>('/roles', signal), []);
  const [editing, setEditing] = useState<string | null>(null);
  const list = roles.data?.roles ?? [];
  return (
    <>
      <h1>Roles</h1>
      <p class="muted">A role grants devices (chosen by their labels), logins on them, forward targets, and relay actions. A user's access is the union of their roles.</p>
      <ErrorBanner error={roles.error} onRetry={roles.reload} />
      {can(me, 'role.add') && (
        <details class="panel">
          <summary>Add a role</summary>
          <RoleForm onDone={roles.reload} />
        </details>
      )}
      {roles.data && list.length === 0 ? <Empty title="No roles." /> : (
        <ul class="cards">
          {list.map((r) => (
            <li key={r.name} class="panel" data-role={r.name}>
              <h2>{r.name}</h2>
              {editing === r.name ? <RoleForm role={r} onDone={() => { setEditing(null); roles.reload(); }} onCancel={() => setEditing(null)} /> : (
                <>
                  <dl class="kv">
                    <div><dt>Devices</dt><dd>{items(r.devices)}</dd></div>
                    <div><dt>Logins</dt><dd>{items(r.logins)}</dd></div>
                    <div><dt>Forwards</dt><dd>{items(r.forwards)}</dd></div>
                    <div><dt>Actions</dt><dd>{items(r.actions)}</dd></div>
                    <div><dt>Users</dt><dd>{r.users.join(', ') || 'nobody'}</dd></div>
                  </dl>
                  <div class="actions">
                    {can(me, 'role.edit') && <button type="button" onClick={() => setEditing(r.name)}>Edit</button>}
                    {can(me, 'role.remove') && <RemoveRole name={r.name} onDone={roles.reload} />}
                  </div>
                </>
              )}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

function items(list: string[]): JSX.Element | string {
  return list.length ? <span class="codes">{list.map((x) => <code key={x}>{x}</code>)}</span> : 'none';
}

function RemoveRole({ name, onDone }: { name: string; onDone(): void }): JSX.Element {
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<unknown>(null);
  if (!confirming) return <button type="button" onClick={() => setConfirming(true)}>Remove</button>;
  return (
    <>
      <button type="button" class="danger" onClick={() => { setError(null); api('DELETE', `/roles/${seg(name)}`).then(onDone, setError); }}>Remove role {name}</button>
      <button type="button" onClick={() => { setConfirming(false); setError(null); }}>Cancel</button>
      <ErrorBanner error={error} />
    </>
  );
}

/** The form for a new role, or for editing `role` (its name then stays). */
function RoleForm({ role, onDone, onCancel }: { role?: RoleView; onDone(): void; onCancel?(): void }): JSX.Element {
  const [error, setError] = useState<unknown>(null);
  // Groups (`device.*`) a role was given elsewhere get a box of their own, so that saving keeps them.
  const groups = (role?.actions ?? []).filter((a) => a !== '*' && !(ACTIONS as readonly string[]).includes(a));
  const onSubmit = (e: Event) => {
    e.preventDefault();
    const formEl = e.currentTarget as HTMLFormElement;
    const form = new FormData(formEl);
    const text = (k: string) => listItems(String(form.get(k) ?? ''));
    const name = role?.name ?? String(form.get('name') ?? '').trim();
    // One device selector a line: a selector's own commas join its terms (all must hold).
    const devices = lineItems(String(form.get('devices') ?? ''));
    const input = { name, devices, logins: text('logins'), forwards: text('forwards'), actions: form.getAll('actions').map(String) };
    setError(null);
    (role ? api('PUT', `/roles/${seg(name)}`, input) : api('POST', '/roles', input))
      .then(() => { if (!role) formEl.reset(); onDone(); }, setError);
  };
  return (
    <form class="form" onSubmit={onSubmit}>
      {!role && <label>Name <input name="name" required autocomplete="off" spellcheck={false} pattern="[a-z][a-z0-9_-]{0,31}" title="up to 32 of a-z, 0-9, _ and -, starting with a letter" /></label>}
      <label>Devices <span class="hint">one selector a line: <code>*</code> (every device), or label terms that must all hold, such as <code>site=berlin,env!=prod</code></span>
        <textarea name="devices" rows={2} defaultValue={role?.devices.join('\n')} spellcheck={false} />
      </label>
      <label>Logins <span class="hint">e.g. <code>pi, root</code>, or <code>*</code></span>
        <input name="logins" defaultValue={role?.logins.join(', ')} spellcheck={false} />
      </label>
      <label>Forwards <span class="hint">HOST:PORT targets for <code>ssh -L</code>; empty: none</span>
        <input name="forwards" defaultValue={role?.forwards.join(', ')} spellcheck={false} />
      </label>
      <fieldset class="checks">
        <legend>Relay actions</legend>
        <label><input type="checkbox" name="actions" value="*" defaultChecked={role?.actions.includes('*')} /> <code>*</code> (every action)</label>
        {groups.map((g) => <label key={g}><input type="checkbox" name="actions" value={g} defaultChecked /> <code>{g}</code></label>)}
        {ACTIONS.map((a) => <label key={a}><input type="checkbox" name="actions" value={a} defaultChecked={role?.actions.includes(a)} /> <code>{a}</code></label>)}
      </fieldset>
      <ErrorBanner error={error} />
      <div class="actions">
        <button type="submit" class="primary">{role ? 'Save role' : 'Add role'}</button>
        {onCancel && <button type="button" onClick={onCancel}>Cancel</button>}
      </div>
    </form>
  );
}
