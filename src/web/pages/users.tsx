/**
 * Users (for admins): every relay user with their roles and key fingerprints; add a user,
 * remove one, change their roles, add and remove keys. Each form shows the relay's own
 * message when it refuses (a bad key, an unknown role, the last admin).
 */
import '../components/forms.css';
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { api, get } from '../api.ts';
import type { Me, RoleView, UserView } from '../api-types.ts';
import { Empty, ErrorBanner, Time } from '../components/index.ts';
import { seg } from '../router.tsx';
import { can, useMe } from '../session.ts';
import { useData } from '../use-data.ts';

/** The users page (`/users`). */
export default function UsersPage(): JSX.Element {
  const me = useMe();
  const users = useData((signal) => get<{ users: UserView[] }>('/users', signal), []);
  // Without role.list the role boxes are empty; the relay still checks names typed elsewhere.
  const roles = useData((signal) => (can(me, 'role.list') ? get<{ roles: RoleView[] }>('/roles', signal) : Promise.resolve({ roles: [] })), []);
  const roleNames = (roles.data?.roles ?? []).map((r) => r.name);
  const list = users.data?.users ?? [];
  return (
    <>
      <h1>Users</h1>
      <p class="muted">Relay users sign in over SSH with their keys (and to this console with <code>ssh relay login</code>). Their roles decide what they may reach and do.</p>
      <ErrorBanner error={users.error ?? roles.error} onRetry={() => { users.reload(); roles.reload(); }} />
      {can(me, 'user.add') && <AddUser roleNames={roleNames} onDone={users.reload} />}
      {users.data && list.length === 0 && <Empty title="No users." />}
      <ul class="cards">
        {list.map((u) => <UserCard key={u.name} user={u} me={me} roleNames={roleNames} onDone={users.reload} />)}
      </ul>
    </>
  );
}

function AddUser({ roleNames, onDone }: { roleNames: string[]; onDone(): void }): JSX.Element {
  const [error, setError] = useState<unknown>(null);
  const onSubmit = (e: Event) => {
    e.preventDefault();
    const formEl = e.currentTarget as HTMLFormElement;
    const form = new FormData(formEl);
    const roles = form.getAll('roles').map(String);
    setError(null);
    api('POST', '/users', { name: String(form.get('name') ?? '').trim(), key: String(form.get('key') ?? '').trim(), ...(roles.length ? { roles } : {}) })
      .then(() => { formEl.reset(); onDone(); }, setError);
  };
  return (
    <details class="panel">
      <summary>Add a user</summary>
      <form class="form" onSubmit={onSubmit}>
        <label>Name <input name="name" required autocomplete="off" spellcheck={false} /></label>
        <label>Public key <span class="hint">one line, as in ~/.ssh/id_ed25519.pub</span>
          <textarea name="key" required rows={3} spellcheck={false} placeholder="ssh-ed25519 AAAA… alice@laptop" />
        </label>
        <RolePicker roleNames={roleNames} chosen={[]} legend="Roles (none chosen: operator)" />
        <ErrorBanner error={error} />
        <div><button type="submit" class="primary">Add user</button></div>
      </form>
    </details>
  );
}

function RolePicker({ roleNames, chosen, legend }: { roleNames: string[]; chosen: string[]; legend: string }): JSX.Element {
  return (
    <fieldset class="checks">
      <legend>{legend}</legend>
      {roleNames.map((r) => <label key={r}><input type="checkbox" name="roles" value={r} defaultChecked={chosen.includes(r)} /> {r}</label>)}
    </fieldset>
  );
}

function UserCard({ user, me, roleNames, onDone }: { user: UserView; me: Me; roleNames: string[]; onDone(): void }): JSX.Element {
  const [error, setError] = useState<unknown>(null);
  const [confirming, setConfirming] = useState(false);
  const path = `/users/${seg(user.name)}`;
  const act = (call: Promise<unknown>, after?: () => void) => { setError(null); call.then(() => { after?.(); onDone(); }, setError); };
  const onRoles = (e: Event) => {
    e.preventDefault();
    act(api('PUT', `${path}/roles`, { roles: new FormData(e.currentTarget as HTMLFormElement).getAll('roles').map(String) }));
  };
  const onKey = (e: Event) => {
    e.preventDefault();
    const formEl = e.currentTarget as HTMLFormElement;
    act(api('POST', `${path}/keys`, { key: String(new FormData(formEl).get('key') ?? '').trim() }), () => formEl.reset());
  };
  return (
    <li class="panel" data-user={user.name}>
      <h2>{user.name}{me.user === user.name ? ' (you)' : ''}</h2>
      <p class="muted">Since <Time at={user.createdAt} />. Roles: {user.roles.join(', ') || 'none'}.</p>
      <h3>Keys</h3>
      <ul class="keys">
        {user.keys.map((fp) => (
          <li key={fp}>
            <code>{fp}</code>
            {can(me, 'user.key') && <button type="button" onClick={() => act(api('DELETE', `${path}/keys/${seg(fp)}`))} aria-label={`Remove key ${fp} of ${user.name}`}>Remove key</button>}
          </li>
        ))}
        {user.keys.length === 0 && <li class="muted">No key: this user cannot sign in.</li>}
      </ul>
      {can(me, 'user.key') && (
        <form class="inline" onSubmit={onKey}>
          <label>Add a key <input name="key" required spellcheck={false} placeholder="ssh-ed25519 AAAA…" /></label>
          <button type="submit">Add key</button>
        </form>
      )}
      {can(me, 'user.role') && (
        <form class="inline" onSubmit={onRoles}>
          <RolePicker roleNames={roleNames} chosen={user.roles} legend="Roles" />
          <button type="submit">Save roles</button>
        </form>
      )}
      <ErrorBanner error={error} />
      {can(me, 'user.remove') && me.user !== user.name && (
        <div class="actions">
          {!confirming && <button type="button" onClick={() => setConfirming(true)}>Remove user</button>}
          {confirming && (
            <>
              <span>Remove {user.name}? Their connections end now.</span>
              <button type="button" class="danger" onClick={() => act(api('DELETE', path))}>Remove {user.name}</button>
              <button type="button" onClick={() => setConfirming(false)}>Cancel</button>
            </>
          )}
        </div>
      )}
    </li>
  );
}
